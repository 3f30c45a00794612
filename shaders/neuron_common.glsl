// Shared by the neuron programs: per-layer activation normalisation, size and colour.
// Included after #version; expects LAYER_COLORS defined (0 or 1) by the loader.
uniform sampler2D u_layer_range;   // (layers, 1) RG32F: (low, 1 / (high - low)) per layer
uniform sampler2D u_colormap;      // (entries, 1) RGB, linear filtering
uniform sampler2D u_layer_color;   // (layers, 1) RGB, used when LAYER_COLORS is 1
uniform float u_min_size;          // radius fraction of a neuron at the bottom of its range

// Activation mapped to [0, 1] with its layer's range.
float normalized_activation(float activation, int layer) {
    vec2 range = texelFetch(u_layer_range, ivec2(layer, 0), 0).xy;
    return clamp((activation - range.x) * range.y, 0.0, 1.0);
}

// Radius in pixels: grows with activation, never below the minimum visible size.
float neuron_radius_px(float value, float full_radius_px, float min_radius_px) {
    return max(full_radius_px * mix(u_min_size, 1.0, value), min_radius_px);
}

// Emitted colour: dark at the bottom of the range, the colormap's top entry when fully active.
vec3 neuron_color(float value, int layer) {
#if LAYER_COLORS
    vec3 base = texelFetch(u_layer_color, ivec2(layer, 0), 0).rgb;
#else
    float entries = float(textureSize(u_colormap, 0).x);
    vec3 base = texture(u_colormap, vec2((value * (entries - 1.0) + 0.5) / entries, 0.5)).rgb;
#endif
    return base * value;
}

// Anti-aliased disc coverage of a pixel at distance_px from the centre.
float disc_coverage(float distance_px, float radius_px) {
    return clamp(radius_px - distance_px + 0.5, 0.0, 1.0);
}
