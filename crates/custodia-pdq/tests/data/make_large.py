"""Makes the large PDQ test images (over 1024 px on a side) and their reference hashes.

Hash lists (HMA, NCMEC, StopNCII) are made by hashing the original image at full
resolution, as the `pdqhash` wrapper of Meta's C++ code does; these hashes come from it,
on the pixels Pillow decodes. Run once; the images and expected-large.txt are committed.
Requires: pip install pdqhash "numpy<2" pillow
"""
import numpy as np
import pdqhash
from PIL import Image

from make import bits_to_hex, scene

images = {
    # 1,400 px: the size at which the old shrink-then-hash drifted 12-14 bits.
    "large-a.png": (scene(1400, 1050, 11), {}),
    "large-b.jpg": (scene(2048, 1536, 12), {"quality": 90}),
    "large-c.webp": (scene(1800, 1200, 13), {"quality": 85}),
    "large-d.png": (scene(1100, 3000, 14), {}),
}

lines = []
for name, (img, options) in images.items():
    img.convert("RGB").save(name, **options)
    pixels = np.asarray(Image.open(name).convert("RGB"))
    h, q = pdqhash.compute(pixels)
    lines.append(f"{name} {bits_to_hex(h)} {q}")
with open("expected-large.txt", "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
