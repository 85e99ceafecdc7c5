#!/usr/bin/python3
"""Writes the JPEG and preprocessing fixtures of lumen's image tests (tests/fixtures/jpeg). Run from the
repository root with Debian's Python (python3-pil, python3-torchvision, python3-numpy):

    /usr/bin/python3 tools/make_image_fixtures.py [--shared ../shared/data/images]

Every source picture is one of the public-domain / CC0 photos of the shared data (scikit-image's
coffee.png and chelsea.png, CC0; grace_hopper.png, public domain), so the files can live in the
repository. The output is deterministic: running this again gives the same bytes.

tests/fixtures/jpeg/
  KIND.jpg, KIND.npy       small JPEGs written by PIL (libjpeg-turbo) from a 37 x 29 crop of coffee.png:
                           baseline 4:2:0, 4:2:2 and 4:4:4, progressive, gray, CMYK (Adobe, inverted),
                           and NAME.npy the uint8 (C, H, W) pixels PIL decodes from it (CMYK converted
                           to RGB by PIL). lumen's decode must equal them within 1/255.
  orient_K.jpg, .npy       a 24 x 16 crop with EXIF Orientation K = 1..8; the .npy is PIL's decode
                           after ImageOps.exif_transpose (the picture shown upright).
  crop.png, crop_q95.jpg   a 128 x 96 crop of grace_hopper.png enlarged to 256 x 192 (bicubic) and PIL's
                           quality-95 JPEG of it (4:2:0, PIL's default).
  coffee.jpg               the whole photo (600 x 400) as a quality-85 JPEG.
  coffee_torchvision.png   torchvision's eval transform before ToTensor: Resize(256) (PIL bilinear,
                           antialiased) + CenterCrop(224) of the PIL-decoded JPEG, uint8 RGB; ToTensor +
                           Normalize(ImageNet mean, std) of it is torchvision's input tensor (checked
                           here against the full Compose). coffee_inception.png: Resize(342) +
                           CenterCrop(299), as torchvision's Inception v3 weights transform.
  shared_NAME_torchvision.png   the same for the shared photos chelsea.png (landscape) and
                           grace_hopper.png (portrait); the tests read the photos from
                           ../shared/data/images and skip when it is absent.
"""
import argparse
import io
import os

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision import transforms as T

OUT = os.path.join("tests", "fixtures", "jpeg")
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def save_bytes(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def jpeg_bytes(im, **kw):
    b = io.BytesIO()
    im.save(b, "JPEG", **kw)
    return b.getvalue()


def chw(im):
    a = np.asarray(im)
    return np.ascontiguousarray(a[:, :, None] if a.ndim == 2 else a).transpose(2, 0, 1).copy()


def decode_ref(name, data):
    """Writes name.jpg and name.npy: PIL's pixels (uint8 (C, H, W), RGB for CMYK files)."""
    save_bytes(name + ".jpg", data)
    im = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if im.mode == "CMYK":
        im = im.convert("RGB")
    np.save(os.path.join(OUT, name + ".npy"), chw(im))


def exif_with_orientation(k):
    e = Image.Exif()
    e[0x0112] = k
    return e.tobytes()


def torchvision_refs(stem, im, which=("torchvision",)):
    """PHOTO_torchvision.png (and _inception.png): the transform's uint8 picture before ToTensor."""
    sizes = {"torchvision": (256, 224), "inception": (342, 299)}
    for w in which:
        resize, crop = sizes[w]
        pic = T.CenterCrop(crop)(T.Resize(resize)(im))
        full = T.Compose([T.Resize(resize), T.CenterCrop(crop), T.ToTensor(), T.Normalize(MEAN, STD)])(im)
        again = T.Normalize(MEAN, STD)(T.ToTensor()(pic))
        assert torch.equal(full, again), stem
        pic.save(os.path.join(OUT, "%s_%s.png" % (stem, w)), optimize=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join("..", "shared", "data", "images"))
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    coffee = Image.open(os.path.join(args.shared, "coffee.png")).convert("RGB")

    # decoding: every layout lumen reads, against PIL's libjpeg-turbo
    c = coffee.crop((200, 100, 237, 129))  # 37 x 29: odd sizes, partial MCUs
    decode_ref("rgb420", jpeg_bytes(c, quality=85))
    decode_ref("rgb422", jpeg_bytes(c, quality=85, subsampling=1))
    decode_ref("rgb444", jpeg_bytes(c, quality=85, subsampling=0))
    decode_ref("progressive", jpeg_bytes(c, quality=85, progressive=True))
    decode_ref("gray", jpeg_bytes(c.convert("L"), quality=85))
    decode_ref("cmyk", jpeg_bytes(c.convert("CMYK"), quality=90))
    o = coffee.crop((300, 150, 324, 166))  # 24 x 16: not square, so turns show
    for k in range(1, 9):
        decode_ref("orient_%d" % k, jpeg_bytes(o, quality=90, exif=exif_with_orientation(k)))

    # a PNG and its quality-95 JPEG: a crop of grace_hopper.png enlarged 2x (bicubic), about as smooth
    # at the pixel level as a camera photo at full resolution (JPEG's own error grows with detail per pixel)
    hopper = Image.open(os.path.join(args.shared, "grace_hopper.png")).convert("RGB")
    crop = hopper.crop((150, 60, 278, 156)).resize((256, 192), Image.BICUBIC)
    crop.save(os.path.join(OUT, "crop.png"), optimize=True)
    save_bytes("crop_q95.jpg", jpeg_bytes(crop, quality=95))

    # a whole photo and torchvision's eval transforms of it
    data = jpeg_bytes(coffee, quality=85)
    save_bytes("coffee.jpg", data)
    torchvision_refs("coffee", Image.open(io.BytesIO(data)).convert("RGB"), ("torchvision", "inception"))
    for name in ("chelsea", "grace_hopper"):  # landscape 451 x 300 and portrait 512 x 600
        path = os.path.join(args.shared, name + ".png")
        torchvision_refs("shared_" + name, Image.open(path).convert("RGB"))

    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("wrote %d files, %d bytes, into %s" % (len(os.listdir(OUT)), total, OUT))


if __name__ == "__main__":
    main()
