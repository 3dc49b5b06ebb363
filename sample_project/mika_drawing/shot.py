"""What one picture shows (`Shot`) and how far the character is turned (`View`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shot:
    name: str
    view: str           # front | three_quarter | profile
    facing: str         # left | right (where her face points in the picture; ignored for front)
    framing: str        # portrait | half | full
    expression: str     # smile | neutral | surprised | laughing | sleepy | wink | determined | shy | calm | focused
    outfit: str         # a key of OUTFITS
    pose: str           # a key of POSES
    scene: str          # a key of SCENES
    light: str          # a key of LIGHTS
    caption: str        # what varies, in words (the trigger word is put in front)
    tilt: float = 0.0   # head tilt in degrees, clockwise in the right-facing drawing
    x: float = 0.0      # horizontal offset of the character, in picture widths
    y: float = 0.0      # vertical offset, in picture heights


@dataclass(frozen=True)
class View:
    """How far the head and body are turned; left-facing pictures mirror the right-facing drawing."""

    phi: float          # head turn in radians (0 front, 0.5 three-quarter)
    profile: bool
    mirror: bool
    left_w: float       # body half-width factors on the picture's left and right
    right_w: float
    shift: float        # body centre x
    front: float        # x of the garment's centre line (buttons, zip, bow)

    @staticmethod
    def of(shot: Shot) -> View:
        mirror = shot.view != "front" and shot.facing == "left"
        if shot.view == "front":
            return View(0.0, False, False, 1.0, 1.0, 0.0, 0.0)
        if shot.view == "three_quarter":
            return View(0.5, False, mirror, 0.94, 0.78, 0.04, 0.24)
        return View(1.0, True, mirror, 0.6, 0.6, 0.12, 0.38)

    @property
    def clip_visible_side(self) -> bool:
        """The star clip is on her left: towards the viewer unless she shows us her right side (profile)."""
        return not (self.profile and not self.mirror)
