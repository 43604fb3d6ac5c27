"""Makes the PDQ test images and their reference hashes.

The hashes come from Meta's reference implementation (the `pdqhash` PyPI package wraps
its C++ code), computed on the pixels Pillow decodes. Run once; the images and
expected.txt are committed.  Requires: pip install pdqhash "numpy<2" pillow
"""
import numpy as np
import pdqhash
from PIL import Image, ImageDraw, ImageFilter

rng = np.random.default_rng(20261124)


def scene(w, h, seed):
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack(
        [
            (x * 255 // w),
            (y * 255 // h),
            ((x + y) * 127 // (w + h)),
        ],
        axis=-1,
    ).astype(np.uint8)
    img = Image.fromarray(base)
    d = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = int(r.integers(0, w)), int(r.integers(0, h))
        x1, y1 = x0 + int(r.integers(20, w // 2)), y0 + int(r.integers(20, h // 2))
        color = tuple(int(c) for c in r.integers(0, 256, 3))
        if r.random() < 0.5:
            d.ellipse([x0, y0, x1, y1], fill=color)
        else:
            d.rectangle([x0, y0, x1, y1], fill=color)
    return img.filter(ImageFilter.GaussianBlur(1.5))


def bits_to_hex(vector):
    # The wrapper returns bit 255 first: bit k of the hash is vector[255 - k].
    bits = vector[::-1]
    words = [sum(int(bits[16 * i + b]) << b for b in range(16)) for i in range(16)]
    return "".join(f"{w:04x}" for w in reversed(words))


if __name__ == "__main__":
    images = {
        "scene-a.png": scene(640, 480, 1),
        "scene-b.png": scene(512, 512, 2),
        "scene-c.png": scene(800, 600, 3),
        "scene-d.png": scene(300, 400, 4),
    }
    # Variants of scene-a: resized and re-encoded as JPEG (the same picture to PDQ).
    images["scene-a-small.jpg"] = images["scene-a.png"].resize((320, 240), Image.BILINEAR)
    images["scene-a-q60.jpg"] = images["scene-a.png"]

    lines = []
    for name, img in images.items():
        if name.endswith(".jpg"):
            img.convert("RGB").save(name, quality=60)
        else:
            img.save(name)
        pixels = np.asarray(Image.open(name).convert("RGB"))
        h, q = pdqhash.compute(pixels)
        lines.append(f"{name} {bits_to_hex(h)} {q}")
    with open("expected.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
