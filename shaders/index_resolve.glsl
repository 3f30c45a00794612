#version 330
// Index-map render mode: one full-screen pass that looks up each pixel's neuron and its activation,
// so a frame costs O(pixels) whatever the number of neurons.
#include "neuron_common.glsl"

#if defined VERTEX_SHADER

void main() {
    // One triangle covering the viewport.
    vec2 corner = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    gl_Position = vec4(corner * 2.0 - 1.0, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

uniform usampler2D u_index_map;    // see index_map.glsl
uniform sampler2D u_activations;   // (width, rows) R32F, neuron i at (i % width, i / width)
uniform float u_radius_px;
uniform float u_min_radius_px;
out vec4 f_color;

void main() {
    uvec4 texel = texelFetch(u_index_map, ivec2(gl_FragCoord.xy), 0);
    if (texel.x == 0u) {
        discard;
    }
    int neuron = int(texel.x - 1u);
    int width = textureSize(u_activations, 0).x;
    float activation = texelFetch(u_activations, ivec2(neuron % width, neuron / width), 0).r;
    int layer = int(texel.z);
    float value = normalized_activation(activation, layer);
    float radius_px = neuron_radius_px(value, u_radius_px, u_min_radius_px);
    float coverage = disc_coverage(uintBitsToFloat(texel.y), radius_px);
    if (coverage <= 0.0) {
        discard;
    }
    f_color = vec4(neuron_color(value, layer) * coverage, coverage);
}

#endif
