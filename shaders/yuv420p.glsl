#version 330
// The rendered RGB image as the planes of a yuv420p video frame, one fragment per BLOCKS horizontally
// adjacent 2x2 pixel blocks: each source pixel is read once, for its luma and its block's chroma (the
// block mean). Four targets of (width / (2 * BLOCKS), height / 2) texels: the luma of the block's top row
// and of its bottom row (2 * BLOCKS bytes per texel each), Cb and Cr (BLOCKS bytes each). Read back, they
// are the frame's planes with the luma rows to interleave: half the bytes of RGB, and ffmpeg has no
// colour conversion left to do. With PAD, pixels beyond the image (the padding of odd sizes to the even
// ones 4:2:0 needs) are black. texelFetch only: filtered sampling costs several times more on software
// rasterisers.
// Drawn as one square point per tile of the frame that holds more than the background (the rest of the
// targets is cleared to the background's values): points are rasterised as axis-aligned squares, without
// the diagonal a quad's two triangles would shade twice. Or, with u_tile_texels 0, as one triangle over
// everything.
#include "fullscreen.glsl"

#if defined VERTEX_SHADER

in ivec2 in_tile;             // per instance: tile column and row, from the bottom left
uniform float u_tile_texels;  // side of a tile in texels of the targets; 0: the whole frame
uniform vec2 u_target_size;   // texels of the targets

void main() {
    if (u_tile_texels == 0.0) {
        gl_Position = fullscreen_position(gl_VertexID);
        return;
    }
    // A point whose centre leaves the viewport is dropped: the last, partial tiles move inwards (by less
    // than half a tile, so they still reach the edge; what they cover twice converts to the same values).
    vec2 centre = min((vec2(in_tile) + 0.5) * u_tile_texels, u_target_size - 0.5);
    gl_PointSize = u_tile_texels;
    gl_Position = vec4(centre / u_target_size * 2.0 - 1.0, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

uniform sampler2D u_image;   // the rendered frame, top row first
uniform vec4 u_luma;         // plane value = dot(rgb, coefficients.rgb) + coefficients.a, all in [0, 1]
uniform vec4 u_cb;
uniform vec4 u_cr;
layout(location = 0) out vec4 f_luma_top;
layout(location = 1) out vec4 f_luma_bottom;
layout(location = 2) out vec4 f_cb;
layout(location = 3) out vec4 f_cr;

vec3 pixel(ivec2 position) {
#if PAD
    ivec2 size = textureSize(u_image, 0);
    return all(lessThan(position, size)) ? texelFetch(u_image, min(position, size - 1), 0).rgb : vec3(0.0);
#else
    return texelFetch(u_image, position, 0).rgb;
#endif
}

float plane(vec3 rgb, vec4 coefficients) {
    return dot(rgb, coefficients.rgb) + coefficients.a;
}

void main() {
    ivec2 origin = ivec2(int(gl_FragCoord.x) * 2 * BLOCKS, int(gl_FragCoord.y) * 2);
    vec4 top = vec4(0.0), bottom = vec4(0.0), cb = vec4(0.0), cr = vec4(0.0);
    for (int i = 0; i < BLOCKS; i++) {
        ivec2 corner = origin + ivec2(2 * i, 0);
        vec3 a = pixel(corner), b = pixel(corner + ivec2(1, 0));
        vec3 c = pixel(corner + ivec2(0, 1)), d = pixel(corner + ivec2(1, 1));
        top[2 * i] = plane(a, u_luma);
        top[2 * i + 1] = plane(b, u_luma);
        bottom[2 * i] = plane(c, u_luma);
        bottom[2 * i + 1] = plane(d, u_luma);
        vec3 mean = 0.25 * (a + b + c + d);
        cb[i] = plane(mean, u_cb);
        cr[i] = plane(mean, u_cr);
    }
    f_luma_top = top;
    f_luma_bottom = bottom;
    f_cb = cb;
    f_cr = cr;
}

#endif
