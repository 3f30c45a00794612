#version 330
// Index-map render mode, O(neurons), whenever activations or ranges change: the colour and normalised
// activation of every neuron, into an RGBA8 texture laid out like the activation texture
// (neuron i at (i % width, i / width) with width = 1 << NEURON_TEXTURE_SHIFT).
#include "neuron_common.glsl"
#include "fullscreen.glsl"

#if defined VERTEX_SHADER

void main() {
    gl_Position = fullscreen_position(gl_VertexID);
}

#elif defined FRAGMENT_SHADER

uniform sampler2D u_activations;   // R32F raw activation per neuron
uniform isampler2D u_layers;       // R32I layer per neuron
out vec4 f_color;

void main() {
    ivec2 texel = ivec2(gl_FragCoord.xy);
    float activation = texelFetch(u_activations, texel, 0).r;
    int layer = texelFetch(u_layers, texel, 0).r;
    float value = normalized_activation(activation, layer);
    f_color = vec4(neuron_color(value, layer), value);
}

#endif
