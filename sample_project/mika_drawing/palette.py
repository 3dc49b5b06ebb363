"""Mika's colours: fixed traits (hair, eyes, star clip) and the ink of the outlines."""

from __future__ import annotations

Color = tuple[int, int, int]

INK = (62, 42, 52)
WHITE = (255, 255, 255)
SKIN = (255, 228, 208)
SKIN_SHADE = (246, 194, 178)
HAIR = (40, 184, 170)
HAIR_SHADE = (26, 134, 132)
HAIR_LIGHT = (132, 230, 214)
IRIS_DARK = (168, 84, 14)
IRIS = (236, 148, 30)
IRIS_LIGHT = (255, 206, 92)
PUPIL = (84, 36, 12)
STAR = (255, 214, 64)
STAR_SHADE = (240, 162, 36)
BOBBLE = (255, 112, 104)
BOBBLE_SHADE = (220, 76, 80)
BLUSH = (255, 170, 170)
FRECKLE = (196, 122, 92)
MOUTH = (150, 48, 64)
TONGUE = (244, 128, 128)
