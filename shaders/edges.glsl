#version 330
// Edges as faint additive lines; brightness follows the activation of both end points.
#include "neuron_common.glsl"

#if defined VERTEX_SHADER

in vec2 in_position;
in float in_activation;
in int in_layer;

uniform mat4 u_projection;
uniform float u_edge_alpha;   // intensity of an edge between fully active neurons
uniform float u_edge_floor;   // fraction of that intensity kept between silent neurons

out float v_intensity;

void main() {
    float value = normalized_activation(in_activation, in_layer);
    v_intensity = u_edge_alpha * mix(u_edge_floor, 1.0, value);
    gl_Position = u_projection * vec4(in_position, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

in float v_intensity;
uniform vec3 u_edge_color;
out vec4 f_color;

void main() {
    f_color = vec4(u_edge_color * v_intensity, v_intensity);
}

#endif
