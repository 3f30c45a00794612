#version 330
// Rasterise which neuron covers each pixel (for the index-map render mode).
// Output per pixel: (neuron index + 1, distance to its centre in pixels as float bits, layer, 0);
// 0 in the first channel means no neuron. The depth test keeps the neuron whose centre is nearest
// relative to its size.

#if defined VERTEX_SHADER

in vec2 in_corner;
in vec2 in_position;
in int in_layer;

uniform mat4 u_projection;
uniform vec2 u_viewport;
uniform float u_extent_px;   // largest radius any neuron can take, plus the anti-aliased rim

out vec2 v_offset_px;
flat out uint v_index;
flat out uint v_layer;

void main() {
    v_offset_px = in_corner * u_extent_px;
    v_index = uint(gl_InstanceID + 1);
    v_layer = uint(in_layer);
    vec4 center = u_projection * vec4(in_position, 0.0, 1.0);
    gl_Position = center + vec4(v_offset_px * 2.0 / u_viewport, 0.0, 0.0);
}

#elif defined FRAGMENT_SHADER

in vec2 v_offset_px;
flat in uint v_index;
flat in uint v_layer;
uniform float u_extent_px;
out uvec4 f_index;

void main() {
    float distance_px = length(v_offset_px);
    if (distance_px > u_extent_px) {
        discard;
    }
    gl_FragDepth = distance_px / u_extent_px;
    f_index = uvec4(v_index, floatBitsToUint(distance_px), v_layer, 0u);
}

#endif
