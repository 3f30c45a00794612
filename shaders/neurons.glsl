#version 330
// Instanced neurons: one screen-aligned quad per neuron, an anti-aliased disc drawn additively.
// Only lit neurons are instanced (Scene gathers them): a neuron at the bottom of its range adds nothing.
#include "neuron_common.glsl"

#if defined VERTEX_SHADER

in vec2 in_corner;       // static quad corner in [-1, 1]^2
in vec2 in_position;     // per instance, world units
in float in_activation;  // per instance, raw activation
in int in_layer;         // per instance

uniform mat4 u_projection;
uniform vec2 u_viewport;        // framebuffer size in pixels
uniform float u_radius_px;      // radius of a fully active neuron
uniform float u_min_radius_px;

out vec2 v_offset_px;
flat out float v_radius_px;
flat out vec3 v_color;

void main() {
    float value = normalized_activation(in_activation, in_layer);
    v_radius_px = neuron_radius_px(value, u_radius_px, u_min_radius_px);
    v_color = neuron_color(value, in_layer);
    float extent = v_radius_px + 1.0;  // one pixel of room for the anti-aliased rim
    v_offset_px = in_corner * extent;
    vec4 center = u_projection * vec4(in_position, 0.0, 1.0);
    gl_Position = center + vec4(v_offset_px * 2.0 / u_viewport, 0.0, 0.0);
}

#elif defined FRAGMENT_SHADER

in vec2 v_offset_px;
flat in float v_radius_px;
flat in vec3 v_color;
out vec4 f_color;

void main() {
    float coverage = disc_coverage(length(v_offset_px), v_radius_px);
    if (coverage <= 0.0) {
        discard;
    }
    f_color = vec4(v_color * coverage, coverage);
}

#endif
