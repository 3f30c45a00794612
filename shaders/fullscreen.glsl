// One triangle covering the whole viewport, drawn with 3 vertices and no attributes.
vec4 fullscreen_position(int vertex_id) {
    vec2 corner = vec2(float((vertex_id << 1) & 2), float(vertex_id & 2));
    return vec4(corner * 2.0 - 1.0, 0.0, 1.0);
}
