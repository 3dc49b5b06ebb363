"""The bad-input corpus: broken and hostile inputs a user (or a downloaded archive) can hand zchar.

Generated on the fly, so no binary junk is committed. To look at it:

    python -m tests.corpus.make_corpus OUT

`build(root)` writes everything under `root` and returns a `Corpus`: the folders, and for every case the message
the command line must print for it.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from engine.project import Project, init_project
from tests.dataset_images import png_bomb

TRIGGER = "mika"


def picture(i: int, size: int = 96) -> Image.Image:
    """A small picture, distinct per index (so no two are near-duplicates)."""
    img = Image.new("RGB", (size, size), ((37 * i) % 255, (90 + 53 * i) % 255, (160 + 29 * i) % 255))
    d = ImageDraw.Draw(img)
    for k in range(4):
        x, y = (17 * i + 31 * k) % (size - 20), (29 * i + 13 * k) % (size - 20)
        d.rectangle((x, y, x + 8 + (i + k) % 12, y + 6 + (i * k) % 14), fill=((80 * k + 11 * i) % 255, 40, 200))
    d.ellipse((size // 3, size // 4, 2 * size // 3, size // 2), fill=(240, 200, 170))
    return img


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


# Readable pictures with awkward names or modes: every one must count as usable. (file name, bytes)
def accepted_images() -> list[tuple[str | bytes, bytes]]:
    cmyk = encoded(picture(20).convert("CMYK"), "JPEG")
    deep = Image.linear_gradient("L").resize((96, 96)).point(lambda v: v * 257, "I").convert("I;16")
    return [
        ("cmyk.jpg", cmyk),
        ("deep-16bit.png", encoded(deep)),
        ("ミカ 01.png", encoded(picture(21))),
        ("with space.png", encoded(picture(22))),
        ("new\nline.png", encoded(picture(23))),
        ("-leading-dash.png", encoded(picture(24))),
        ("L" * 240 + ".png", encoded(picture(25))),
        (b"bad\xffbyte.png", encoded(picture(26))),  # not UTF-8: a name from another system
        ("[red]bracket.png", encoded(picture(27))),  # Rich/Textual markup in a name
    ]


# Files no command may use: (file name, bytes or None for the decompression bomb, what `check` and `prepare` say).
def broken_images() -> list[tuple[str, bytes | None, str]]:
    good = encoded(picture(30))
    jpeg = encoded(Image.effect_noise((160, 160), 40).convert("RGB"), "JPEG")
    return [
        ("truncated.png", truncated(good), "truncated or corrupt image data"),
        ("truncated.jpg", truncated(jpeg), "truncated or corrupt image data"),
        ("zero-bytes.png", b"", "empty file (0 bytes)"),
        ("text-not-image.png", b"just some text, not a picture\n", "not an image Pillow can read"),
        ("bomb.png", None, "too large to open safely"),
        ("x[@click=app.quit]markup.png", truncated(good), "truncated or corrupt image data"),
        ("esc\x1b]0;pwned\x07.png", truncated(good), "truncated or corrupt image data"),
    ]


def os_name(name: str | bytes) -> str:
    """How Python names the file (undecodable bytes become surrogates)."""
    return os.fsdecode(name) if isinstance(name, bytes) else name


# --- LoRA files that are not Z-Image LoRAs (or not LoRAs, or not safetensors) ---------------------------------------

def safetensors_bytes(shapes: dict[str, list[int]], cut: int = 0) -> bytes:
    """A safetensors file with float32 zeros of the given shapes; `cut` bytes missing at the end."""
    header, offset = {}, 0
    for key, shape in shapes.items():
        size = 4
        for n in shape:
            size *= n
        header[key] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    data = struct.pack("<Q", len(raw)) + raw + b"\0" * offset
    return data[: len(data) - cut] if cut else data


class Unpickled:
    """A pickle whose loading creates `marker`: proof that something unpickled it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def pickle_bytes(marker: Path) -> bytes:
    return pickle.dumps({"state_dict": Unpickled(marker)})


ZIMAGE_Q = "diffusion_model.layers.0.attention.to_q"


def foreign_loras(folder: Path, marker: Path) -> dict[str, tuple[int, str]]:
    """Write the LoRA cases into `folder`; returns {file name: (exit code of `zchar gen --lora`, message)}.

    Exit 2: refused before anything is queued; exit 1: the job runs and fails with the message.
    """
    folder.mkdir(parents=True, exist_ok=True)
    sdxl = {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": [4, 320],
            "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": [320, 4],
            "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": [4, 768]}
    flux = {"transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight": [4, 3072],
            "transformer.single_transformer_blocks.0.attn.to_q.lora_B.weight": [3072, 4],
            "transformer.transformer_blocks.0.attn.add_k_proj.lora_A.weight": [4, 3072]}
    zimage = {f"{ZIMAGE_Q}.lora_A.weight": [4, 32], f"{ZIMAGE_Q}.lora_B.weight": [32, 4]}
    files = {
        "sdxl-style.safetensors": (safetensors_bytes(sdxl), 2, "not a Z-Image LoRA: its keys name modules Z-Image "
                                                               "does not have"),
        "flux-style.safetensors": (safetensors_bytes(flux), 2, "not a Z-Image LoRA: its keys name modules Z-Image "
                                                               "does not have"),
        "truncated-header.safetensors": (safetensors_bytes(zimage)[:30], 2, "not a readable safetensors file"),
        "pickle-renamed.safetensors": (pickle_bytes(marker), 2, "not a safetensors file (bad header)"),
        "model.ckpt": (pickle_bytes(marker), 2, "only .safetensors LoRA files are loaded"),
        "model.pt": (pickle_bytes(marker), 2, "only .safetensors LoRA files are loaded"),
        "model.bin": (pickle_bytes(marker), 2, "only .safetensors LoRA files are loaded"),
        "truncated-data.safetensors": (safetensors_bytes(zimage, cut=100), 1, "not a readable safetensors file"),
        "wrong[red]shape.safetensors": (safetensors_bytes({f"{ZIMAGE_Q}.lora_A.weight": [4, 7],
                                                         f"{ZIMAGE_Q}.lora_B.weight": [9, 4]}), 1,
                                      "is not a Z-Image LoRA: none of its 2 keys match the transformer"),
    }
    out = {}
    for name, (data, code, message) in files.items():
        (folder / name).write_bytes(data)
        out[name] = (code, message)
    return out


# --- project.toml files -------------------------------------------------------------------------------------------

BASE_TOML = 'name = "Mika"\ntrigger = "mika"\n[model]\nbase = "tiny"\n'
TOMLS: dict[str, tuple[bytes, str]] = {  # case -> (project.toml, the message of every command that loads it)
    "bad-syntax": (b'name = "Mika\ntrigger = mika\n', "project.toml: not valid TOML: "),
    "not-utf8": ('name = "Mi\xe9ka"\ntrigger = "mika"\n'.encode("latin-1"),
                 "project.toml: not valid TOML: not UTF-8 text (byte 10)"),
    "binary": (bytes(range(1, 256)) * 4, "project.toml: not valid TOML: not UTF-8 text"),
    "empty": (b"", "name: missing; expected a non-empty string"),
    "wrong-types": ((BASE_TOML + '[train]\nrank = "big"\nflip = "yes"\n').encode(),
                    "train.rank = 'big': expected an integer from 1 to 512"),
    "unknown-keys": ((BASE_TOML + "[train]\nrnak = 4\n").encode(), "train.rnak: unknown key (did you mean 'rank'?)"),
    "not-a-table": (b'name = "Mika"\ntrigger = "mika"\ntrain = 5\n', "train must be a table, not int"),
    "huge-number": ((BASE_TOML + "[train]\nrank = 99999999999999999999999999999\n").encode(),
                    "train.rank = 99999999999999999999999999999: expected an integer from 1 to 512"),
    "nan": ((BASE_TOML + "[train]\nlr = nan\n").encode(), "train.lr = nan: expected a number from 1e-07 to 10.0"),
    "infinite": ((BASE_TOML + "[generate]\nguidance = inf\n").encode(),
                 "generate.guidance = inf: expected a number from 0.0 to 30.0"),
    "bad-template": (b'name = "Mika"\ntrigger = "mika"\ntemplates = [1]\n', "templates[0] must be a table, not int"),
    "two-word-trigger": (b'name = "Mika"\ntrigger = "two words"\n', "trigger = 'two words': expected one word"),
}


def bad_tomls(root: Path) -> dict[str, tuple[Path, str]]:
    """One project folder per malformed project.toml; returns {case: (folder, message)}."""
    out = {}
    for case, (text, message) in TOMLS.items():
        folder = root / case
        (folder / "dataset").mkdir(parents=True)
        (folder / "project.toml").write_bytes(text)
        out[case] = (folder, message)
    toml_dir = root / "toml-is-a-folder"
    (toml_dir / "project.toml").mkdir(parents=True)
    out["toml-is-a-folder"] = (toml_dir, "no project.toml in")
    out["no-such-folder"] = (root / "missing", "no such folder")
    return out


# --- the dataset project and the raw folder -----------------------------------------------------------------------

@dataclass
class Corpus:
    root: Path
    project: Project  # dataset/ holds 6 good pictures and every case below
    raw: Path  # the same files as raw photos, for `prepare`
    outside: Path  # a picture outside the project, that symlinks point at
    marker: Path  # created if any pickle of the corpus is ever unpickled
    usable: int  # images `check` and training must count as usable
    check: dict[str, str] = field(default_factory=dict)  # dataset file -> what `check` says about it
    prepare: dict[str, str] = field(default_factory=dict)  # raw file -> what `prepare` says about it
    written: dict[str, str] = field(default_factory=dict)  # raw file -> the dataset file `prepare` makes of it
    loras: dict[str, tuple[int, str]] = field(default_factory=dict)  # LoRA file -> (exit code, message)
    lora_dir: Path = Path()
    tomls: dict[str, tuple[Path, str]] = field(default_factory=dict)


def _write(folder: Path, name: str | bytes, data: bytes) -> Path:
    path = Path(os.fsdecode(os.path.join(os.fsencode(folder), os.fsencode(name))))
    path.write_bytes(data)
    return path


def build(root: Path) -> Corpus:
    root.mkdir(parents=True, exist_ok=True)
    marker = root / "UNPICKLED"
    outside = root / "outside.png"
    outside.write_bytes(encoded(picture(40)))
    project = init_project(root / "project", TRIGGER, name="Mika", base="tiny")
    project.update({"train.resolution": 64, "train.rank": 4, "train.alpha": 2, "train.epochs": 1,
                    "train.checkpoint_every": 0, "validation.every_epochs": 0, "validation.size": 64,
                    "validation.prompts": ["a portrait"], "model.training_adapter": "", "generate.width": 64,
                    "generate.height": 64, "generate.steps": 2})
    raw = root / "raw"
    raw.mkdir()
    corpus = Corpus(root, project, raw, outside, marker, usable=0)
    ds = project.dataset_dir
    for i in range(6):
        _write(ds, f"img_{i:02d}.png", encoded(picture(i)))
        (ds / f"img_{i:02d}.txt").write_text(f"{TRIGGER}, a drawn character, pose {i}\n")
    for name, data in accepted_images():
        for folder in (ds, raw):
            _write(folder, name, data)
        stem = os_name(name).rsplit(".", 1)[0]
        (ds / f"{stem}.txt").write_text(f"{TRIGGER}, picture {stem[:20]!r}\n", errors="surrogateescape")
        corpus.written[os_name(name)] = stem.replace("\n", "_") + ".jpg"
    for name, data, message in broken_images():
        for folder in (ds, raw):
            if data is None:
                png_bomb(folder / name)
            else:
                _write(folder, name, data)
        corpus.check[name] = corpus.prepare[name] = message
    corpus.usable = 6 + len(accepted_images())

    # captions: too big, binary, UTF-16 (the image stays usable; check warns)
    (ds / "with space.txt").write_bytes(b"mika, " + b"long " * 1_000_000)
    corpus.check["with space.png"] = "with space.txt is 4882 KiB: too big to be a caption"
    (ds / "cmyk.txt").write_bytes(bytes(range(256)) * 8)
    corpus.check["cmyk.jpg"] = "cmyk.txt looks binary, not a text caption"
    (ds / "-leading-dash.txt").write_bytes("mika, ünïcödé".encode("utf-16"))
    corpus.check["-leading-dash.png"] = "-leading-dash.txt is UTF-16-encoded"

    # symlinks: out of the project (absolute and with ..), broken, and one inside (fine)
    (ds / "link-outside.png").symlink_to(outside)
    (ds / "dotdot.png").symlink_to(Path("..") / ".." / outside.name)
    (ds / "broken-link.png").symlink_to(ds / "gone.png")
    (ds / "link-inside.png").symlink_to(ds / "img_00.png")
    corpus.check["link-outside.png"] = corpus.check["dotdot.png"] = ("a symlink to a file outside the project: "
                                                                     "not read")
    corpus.check["broken-link.png"] = "a broken symlink"
    corpus.usable += 1  # link-inside.png
    (ds / "folder.png").mkdir()  # a folder with an image's name: ignored
    os.mkfifo(ds / "pipe")  # not an image name: ignored; but a symlink with one points at it
    (ds / "pipe-link.png").symlink_to("pipe")
    corpus.check["pipe-link.png"] = "not a regular file (a pipe, socket or device)"

    (raw / "link-outside.png").symlink_to(outside)
    corpus.prepare["link-outside.png"] = "a symlink to a file outside the input folder: refused"
    (raw / "photo.heic").write_bytes(b"\0\0\0\x18ftypheic")
    corpus.prepare["photo.heic"] = "HEIC photos are not supported: export them as JPEG"
    (raw / "notes.md").write_text("my notes\n")
    corpus.prepare["notes.md"] = "not an image type zchar reads (.md)"
    os.mkfifo(raw / "named-pipe.png")  # reading it would block forever
    corpus.prepare["named-pipe.png"] = "not a regular file (a pipe, socket or device)"

    corpus.lora_dir = root / "loras"
    corpus.loras = foreign_loras(corpus.lora_dir, marker)
    corpus.tomls = bad_tomls(root / "tomls")
    return corpus


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.corpus.make_corpus OUT")
    made = build(Path(sys.argv[1]))
    print(f"corpus written to {made.root}: {len(made.check)} dataset cases, {len(made.prepare)} prepare cases, "
          f"{len(made.loras)} LoRA files, {len(made.tomls)} project.toml cases")
