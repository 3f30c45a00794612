#version 330
// Index-map render mode: look up each pixel's neuron and that neuron's colour (two texture fetches),
// so a frame costs O(pixels) whatever the number of neurons. Drawn as one quad per occupied
// u_tile_px x u_tile_px tile of the framebuffer: tiles without any neuron are skipped.
// Each pixel writes u_base plus the neuron's light: u_base is the background when the pass replaces
// the framebuffer content (blending off), zero when it adds to it.
#include "neuron_common.glsl"

#if defined VERTEX_SHADER

in vec2 in_corner;   // static quad corner in [-1, 1]^2
in ivec2 in_tile;    // per instance: tile column and row, from the bottom left

uniform vec2 u_viewport;
uniform float u_tile_px;

void main() {
    vec2 pixel = (vec2(in_tile) + (in_corner + 1.0) * 0.5) * u_tile_px;
    gl_Position = vec4(pixel / u_viewport * 2.0 - 1.0, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

uniform usampler2D u_index_map;     // see index_map.glsl
uniform sampler2D u_neuron_colors;  // see neuron_colors.glsl, (1 << NEURON_TEXTURE_SHIFT) texels wide
uniform float u_extent_px;
uniform float u_radius_px;
uniform float u_min_radius_px;
uniform vec4 u_base;
out vec4 f_color;

void main() {
    uint entry = texelFetch(u_index_map, ivec2(gl_FragCoord.xy), 0).r;
    if (entry == 0u) {
        f_color = u_base;
        return;
    }
    int neuron = int(entry >> 8) - 1;
    float distance_px = float(entry & 255u) / 255.0 * u_extent_px;
    ivec2 texel = ivec2(neuron & ((1 << NEURON_TEXTURE_SHIFT) - 1), neuron >> NEURON_TEXTURE_SHIFT);
    vec4 neuron_texel = texelFetch(u_neuron_colors, texel, 0);
    float coverage = disc_coverage(distance_px, neuron_radius_px(neuron_texel.a, u_radius_px, u_min_radius_px));
    f_color = u_base + vec4(neuron_texel.rgb * coverage, coverage);
}

#endif
