"""Page geometry and colours of the invoice layout (version 1)."""

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm

MARGIN = 16 * mm
BOTTOM = 18 * mm
WIDTH = A4[0] - 2 * MARGIN
LOGO_BOX = (48 * mm, 18 * mm)
LOGO_PIXELS = (600, 225)  # ~300 dpi in LOGO_BOX
INK = colors.HexColor("#1D2433")
MUTED = colors.HexColor("#5F6B7A")
ACCENT = colors.HexColor("#1F3A5F")
RULE = colors.HexColor("#D0D5DD")
SHADE = colors.HexColor("#F2F4F7")
MARKS = {  # status -> (watermark text, colour); drawn under the content of every page
    "draft": ("DRAFT", colors.HexColor("#E4E7EC")),
    "void": ("VOID", colors.HexColor("#F6D5D5")),
    "paid": ("PAID", colors.HexColor("#D5EDDD")),
}
