"""Draw the demo project: 18 captioned pictures of one cartoon character, plus unprepared "raw photos".

Run `python sample_project/draw_sample.py`. Deterministic (no network, no ML, seeded scatter), so a rerun rewrites
the same bytes; `project.toml` is written only when missing, so a user's edits survive.

The character, Mika, keeps fixed traits in every picture (teal twin-tails tied with coral hair bobbles, a yellow star
hairclip on her left side, an ahoge, amber eyes, three freckles on each cheek) while pose, framing, expression,
outfit, background and lighting vary. Captions name only what varies; the trigger word carries the rest.
The drawing itself lives in `mika_drawing/`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mika_drawing.render import jpeg_bytes, png_bytes, render
from mika_drawing.shot import Shot
from PIL import Image

HERE = Path(__file__).resolve().parent
try:
    from engine.project import atomic_write_bytes
except ModuleNotFoundError:  # run from a checkout without zchar installed
    sys.path.insert(0, str(HERE.parent))
    from engine.project import atomic_write_bytes

TRIGGER = "mika_zc"

S = Shot
SHOTS = [
    S("01_hoodie_studio", "front", "", "portrait", "smile", "hoodie", "relaxed", "studio_white", "studio",
      "front view, head and shoulders portrait, looking at the viewer with a happy smile, wearing a lavender hoodie, "
      "plain white studio background, soft even studio lighting"),
    S("02_uniform_classroom", "three_quarter", "right", "half", "laughing", "uniform", "wave", "classroom", "sunny",
      "three-quarter view facing right, upper body, laughing with her eyes closed and waving, wearing a sailor "
      "school uniform with a red bow, classroom with a chalkboard, bright daylight", tilt=4),
    S("03_hoodie_profile", "profile", "left", "portrait", "neutral", "hoodie", "stand_profile", "studio_pink",
      "studio", "side profile facing left, head and shoulders, neutral expression, wearing a lavender hoodie, "
      "plain pastel pink background, soft studio lighting", x=0.04),
    S("04_armour_castle", "front", "", "full", "determined", "armour", "hips", "castle", "sunny",
      "front view, full body, standing with her hands on her hips and a confident grin, wearing silver fantasy "
      "armour with a red cape, castle on a green hill behind her, bright sunny day"),
    S("05_dress_beach", "three_quarter", "left", "half", "smile", "dress", "peace", "beach", "sunny",
      "three-quarter view facing left, upper body, smiling and making a peace sign, wearing a light blue polka-dot "
      "summer dress, sunny beach with the sea behind her, bright midday sun", tilt=-5),
    S("06_pyjamas_bedroom", "front", "", "half", "sleepy", "pyjamas", "stretch", "bedroom", "warm",
      "front view, upper body, sleepy and yawning while stretching her arms up, wearing pink pyjamas with a moon "
      "print, cosy bedroom at night, warm lamp light", tilt=6),
    S("07_raincoat_street", "three_quarter", "right", "full", "smile", "raincoat", "umbrella", "rainy_street",
      "overcast", "three-quarter view facing right, full body, walking with a red umbrella and smiling, wearing a "
      "yellow raincoat and red rain boots, rainy city street, grey overcast light", x=0.06, y=0.07),
    S("08_winter_profile", "profile", "right", "half", "surprised", "winter", "stand_profile", "snow_forest", "cold",
      "side profile facing right, upper body, surprised with her mouth open, wearing a red winter coat and a yellow "
      "scarf, snowy pine forest with falling snow, cold daylight"),
    S("09_uniform_night", "front", "", "portrait", "surprised", "uniform", "relaxed", "night_city", "night",
      "front view, head and shoulders portrait, surprised with wide eyes, wearing a sailor school uniform, city at "
      "night with neon signs, cool night lighting", tilt=-4),
    S("10_overalls_park", "three_quarter", "left", "portrait", "wink", "overalls", "relaxed", "park", "sunny",
      "three-quarter view facing left, head and shoulders, winking with her tongue out, wearing a striped shirt and "
      "denim overalls, sunny park with trees, bright daylight", tilt=5),
    S("11_dress_park", "front", "", "full", "smile", "dress", "wave", "park", "sunny",
      "front view, full body, waving with a big smile, wearing a light blue summer dress and sandals, park path "
      "between trees, bright sunny day"),
    S("12_hoodie_night_walk", "profile", "left", "full", "calm", "hoodie", "walk_profile", "night_city", "night",
      "side profile facing left, full body, walking, calm expression, wearing a lavender hoodie and jeans, city "
      "street at night with lit windows, cool night lighting"),
    S("13_sweater_cafe", "three_quarter", "right", "portrait", "shy", "sweater", "hand_chest", "cafe", "warm",
      "three-quarter view facing right, head and shoulders, shy blushing smile, wearing a cream knit turtleneck "
      "sweater, cosy café interior, warm indoor lighting", tilt=-6),
    S("14_armour_sunset", "front", "", "half", "calm", "armour", "relaxed", "sunset_cliff", "golden",
      "front view, upper body, calm expression, wearing silver armour with a red cape, cliff above the sea at "
      "sunset, golden hour light"),
    S("15_winter_jump", "three_quarter", "left", "full", "laughing", "winter", "cheer", "snow_forest", "cold",
      "three-quarter view facing left, full body, jumping with both arms raised and laughing, wearing a red winter "
      "coat and a yellow scarf, snowy forest with falling snow, bright cold daylight"),
    S("16_dress_sunset_profile", "profile", "right", "portrait", "gentle", "dress", "stand_profile", "beach_sunset",
      "sunset", "side profile facing right, head and shoulders, gentle smile, wearing a light blue summer dress, "
      "beach at sunset, warm pink evening light"),
    S("17_uniform_library", "three_quarter", "right", "half", "focused", "uniform", "book", "library", "warm",
      "three-quarter view facing right, upper body, reading a red book with a focused look, wearing a sailor school "
      "uniform, library with bookshelves, warm lamp light", tilt=8),
    S("18_raincoat_window", "front", "", "portrait", "laughing", "raincoat", "relaxed", "rainy_window", "overcast",
      "front view, head and shoulders portrait, laughing, wearing a yellow raincoat, indoors by a rainy window, soft "
      "grey daylight", tilt=-5),
]


def caption(shot: Shot) -> str:
    return f"{TRIGGER}, a girl, {shot.caption}\n"


def draw_dataset_image(shot: Shot, folder: Path) -> Path:
    """Write `NAME.png` and its caption `NAME.txt` into `folder`; returns the PNG's path."""
    path = folder / f"{shot.name}.png"
    atomic_write_bytes(path, png_bytes(render(shot)))
    atomic_write_bytes(path.with_suffix(".txt"), caption(shot).encode("utf-8"))
    return path


# --- raw "photos" for the import demo -----------------------------------------------------------------------

ORIENTATION = 0x0112  # EXIF tag: 6 means "rotate 90° clockwise to display"


def raw_shot(name: str, view: str, facing: str, framing: str, expression: str, outfit: str, pose: str, scene: str,
             light: str, **kw: float) -> Shot:
    return Shot(f"raw_{name}", view, facing, framing, expression, outfit, pose, scene, light, "", **kw)


def draw_raw(folder: Path) -> list[Path]:
    """Unprepared pictures: odd sizes and aspect ratios, JPEG and PNG, an EXIF-rotated phone photo, a near
    duplicate, a transparent sticker and a palette image. Returns the files written."""
    written: list[Path] = []

    def put(name: str, data: bytes) -> None:
        atomic_write_bytes(folder / name, data)
        written.append(folder / name)

    park = render(raw_shot("park", "three_quarter", "right", "half", "smile", "overalls", "peace", "park", "sunny",
                           x=-0.14), 1600, 1200)
    put("IMG_2041.jpg", jpeg_bytes(park, 88))
    put("IMG_2041_edited.jpg", jpeg_bytes(park.resize((1440, 1080), Image.Resampling.LANCZOS), 70))
    put("phone_vertical.jpg", jpeg_bytes(render(raw_shot("cafe", "front", "", "full", "gentle", "sweater", "relaxed",
                                                         "cafe", "warm"), 900, 1600), 85))
    put("scan_2000.png", png_bytes(render(raw_shot("bedroom", "profile", "right", "half", "calm", "pyjamas",
                                                   "stand_profile", "bedroom", "warm"), 2000, 2000)))
    upright = render(raw_shot("rain", "three_quarter", "left", "full", "determined", "raincoat", "umbrella",
                              "rainy_street", "overcast", y=0.06), 1200, 1600)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    put("IMG_2077.jpg", jpeg_bytes(upright.transpose(Image.Transpose.ROTATE_90), 86, exif))
    put("thumb_small.jpg", jpeg_bytes(render(raw_shot("class", "front", "", "portrait", "neutral", "uniform",
                                                      "relaxed", "classroom", "sunny"), 600, 450), 90))
    put("sticker.png", png_bytes(render(raw_shot("sticker", "front", "", "half", "wink", "hoodie", "wave",
                                                 "studio_white", "studio"), background=False)))
    snowy = render(raw_shot("avatar", "front", "", "portrait", "laughing", "winter", "relaxed", "snow_forest",
                            "cold"), 768, 768)
    put("old_avatar.png", png_bytes(snowy.quantize(64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)))
    return written


# --- project.toml -------------------------------------------------------------------------------------------

PROJECT_TOML = '''\
# Demo project: Mika, a drawn cartoon character. The pictures in dataset/ and raw/ are made by draw_sample.py.
name = "Mika"
trigger = "mika_zc"
excluded = []

[model]
# "tiny" is an offline random model: training and generation run end to end on a CPU in a minute, but what it
# draws is noise. For real results use the real model: base = "Tongyi-MAI/Z-Image-Turbo" (downloaded once,
# about 20 GB) or a local diffusers folder, and remove the training_adapter line below so that the default Turbo
# training adapter (ostris/zimage_turbo_training_adapter) is merged in while training.
base = "tiny"
# The tiny model has no training adapter.
training_adapter = ""

[train]
# Sized for a quick CPU run on the tiny model; the comments give the values for the real model on a GPU.
resolution = 256        # real GPU: 1024
rank = 8                # real GPU: 32
alpha = 4               # real GPU: 16
epochs = 3              # real GPU: 15
batch_size = 1
checkpoint_every = 20   # real GPU: 500
keep_checkpoints = 3
flip = false            # Mika wears her star clip on her left side: no mirrored training images

[validation]
# The trigger word is put in front of each prompt.
prompts = [
    "portrait photo, looking at the camera, plain white background, soft studio light",
    "walking in a park on a sunny day, full body, natural light",
    "anime style, watercolor illustration, soft pastel colors",
    "standing in a sci-fi spaceship corridor, cinematic lighting",
]
seeds = [42]
every_epochs = 1        # real GPU: 5
size = 256              # real GPU: 0 (the training resolution)

[generate]
width = 256             # real GPU: 1024
height = 256            # real GPU: 1024
steps = 8
guidance = 0.0

[[templates]]
name = "Café portrait"
age = "young woman"
outfit = "oversized knit sweater"
scene = "cosy café by a rainy window"
action = "holding a cup of cocoa, smiling at the camera"
style = "photo, shallow depth of field"
quality = "high detail, sharp focus"

[[templates]]
name = "Fantasy knight"
age = "young woman"
outfit = "ornate silver armour with a blue cape"
scene = "castle gate at dawn, mist over the hills"
action = "holding a sword, determined look"
style = "fantasy illustration"
quality = "highly detailed, dramatic lighting"

[[templates]]
name = "Anime key visual"
age = "teenage girl"
outfit = "sailor school uniform"
scene = "street with cherry blossoms in spring"
action = "running and waving"
style = "anime key visual, cel shading"
quality = "vibrant colors, clean line art"

[[templates]]
name = "Winter storybook"
age = "little girl"
outfit = "red winter coat and yellow scarf"
scene = "snowy village at night with warm windows"
action = "catching snowflakes"
style = "watercolor storybook illustration"
quality = "soft colors, gentle light"

[[templates]]
name = "Space pilot"
age = "young woman"
outfit = "white space suit with orange details"
scene = "spaceship cockpit with holographic screens"
action = "looking out of the window at a ringed planet"
style = "cinematic digital painting"
quality = "detailed, volumetric light"
'''


def write_project_toml(root: Path) -> bool:
    """Write the demo's project.toml unless one exists (the user's settings win); True if written."""
    toml = root / "project.toml"
    if toml.exists():
        return False
    atomic_write_bytes(toml, PROJECT_TOML.encode("utf-8"))
    return True


def main() -> int:
    for shot in SHOTS:
        print(draw_dataset_image(shot, HERE / "dataset").relative_to(HERE))
    for path in draw_raw(HERE / "raw"):
        print(path.relative_to(HERE))
    if write_project_toml(HERE):
        print("project.toml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
