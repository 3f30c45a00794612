#version 330
// Rasterise which neuron covers each pixel (for the index-map render mode).
// Each pixel stores ((neuron index + 1) << 8) | q, where q = round(255 * distance / extent) is its
// distance to the neuron's centre; 0 means no neuron. The depth test keeps the neuron whose centre
// is nearest.

#if defined VERTEX_SHADER

in vec2 in_corner;
in vec2 in_position;

uniform mat4 u_projection;
uniform vec2 u_viewport;
uniform float u_extent_px;   // largest radius any neuron can take, plus the anti-aliased rim

out vec2 v_offset_px;
flat out uint v_index;

void main() {
    v_offset_px = in_corner * u_extent_px;
    v_index = uint(gl_InstanceID + 1);
    vec4 center = u_projection * vec4(in_position, 0.0, 1.0);
    gl_Position = center + vec4(v_offset_px * 2.0 / u_viewport, 0.0, 0.0);
}

#elif defined FRAGMENT_SHADER

in vec2 v_offset_px;
flat in uint v_index;
uniform float u_extent_px;
out uint f_index;

void main() {
    float distance = length(v_offset_px) / u_extent_px;
    if (distance > 1.0) {
        discard;
    }
    gl_FragDepth = distance;
    f_index = (v_index << 8) | uint(round(distance * 255.0));
}

#endif
