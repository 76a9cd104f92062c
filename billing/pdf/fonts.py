"""Fonts for invoice PDFs, and the split of a string into runs, each in a font that has it.

Customers write their names in Chinese, Japanese, Korean, Cyrillic or accented Latin, and the
standard Helvetica covers none but the last. So:

- Latin, Greek, Cyrillic, Armenian and Georgian use DejaVu Sans, embedded (subset) from
  `billing/fonts/`: DejaVu Sans 2.37 (Debian's fonts-dejavu-core) cut down to those scripts
  and stripped of hinting, which keeps the files ~155 KB and each embedded subset small and
  quick to build (see `billing/fonts/README.md`).
- Chinese and Japanese runs use Droid Sans Fallback (Debian's fonts-droid-fallback,
  Apache-2.0), embedded as a subset of the glyphs used. Reportlab's built-in CID fonts cost
  nothing but are only referenced: viewers without Adobe's Asian font packs (poppler,
  many mobile and Linux readers) drew them as empty boxes. Parsing the 4 MB file costs
  ~0.2 s once per process; the subset adds a few KB to an invoice that prints CJK and
  nothing to one that does not.
- Korean (which Droid Sans Fallback lacks) still uses the referenced CID font HYGothic-Medium.

A string is split into runs (`runs`), drawn one after the other on the same baseline. The CJK
font is chosen per string: any Hangul means Korean, otherwise the embedded font.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import zlib
from collections import OrderedDict
from pathlib import Path

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.pdfdoc import PDFArray
from reportlab.pdfbase.ttfonts import TTFont

FONT_DIR = Path(__file__).resolve().parent.parent / "fonts"
SANS = "FlowbillSans"
SANS_BOLD = "FlowbillSans-Bold"
CJK = "FlowbillCJK"
CJK_FONTS = {"zh": CJK, "ja": CJK, "ko": "HYGothic-Medium"}
#: Distinct font subsets remembered per font (each a few KB to a few tens of KB).
SUBSET_CACHE_SIZE = 256

_CJK_RE = re.compile(
    "["
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK radicals
    "\u3000-\u303f"  # CJK symbols and punctuation
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3200-\u33ff"  # enclosed CJK, CJK compatibility
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\ufe30-\ufe4f"  # CJK compatibility forms
    "\uff00-\uffef"  # half- and full-width forms
    "]+"
)
_KANA_RE = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HANGUL_RE = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")


class _RememberedFlate:
    """Flate (zlib) for embedded font files, remembering the last results.

    Same interface as reportlab's `PDFZCompress` filter (same bytes out). A font file is the
    subset's bytes, which `_remember_subsets` hands out as the same object for the same
    subset, so the lookup hashes each one once.
    """

    pdfname = "FlateDecode"

    def __init__(self, size: int) -> None:
        self._size = size
        self._done: OrderedDict[bytes, bytes] = OrderedDict()

    def encode(self, data: bytes) -> bytes:
        try:
            self._done.move_to_end(data)
            return self._done[data]
        except KeyError:
            out = self._done[data] = zlib.compress(data)
            if len(self._done) > self._size:
                self._done.popitem(last=False)
            return out

    def decode(self, encoded: bytes) -> bytes:
        return zlib.decompress(encoded)


_FONT_FILE_FLATE = _RememberedFlate(SUBSET_CACHE_SIZE)


def _remember_subsets(font: TTFont) -> TTFont:
    """Build each distinct subset of `font` once per process.

    Every PDF embeds, per font, the subset of glyphs it uses; building it (reading the glyphs
    out of the TTF, writing a new one) and compressing it was the costliest part of rendering
    an invoice. Invoices mostly use the same glyphs in the same order (subset 0 keeps ASCII at
    fixed positions; a name with "é" or "张" makes another subset), so the subset's font file
    and its compressed form are remembered, keyed by the subset itself: same input, same
    bytes as building it again. Hooked on the font's face object (reportlab calls
    `face.makeSubset` from `face.addSubsetObjects`).
    """
    face = font.face
    make_subset = face.makeSubset
    add_subset_objects = face.addSubsetObjects

    @functools.lru_cache(maxsize=SUBSET_CACHE_SIZE)
    def subset_bytes(subset: tuple[int, ...]) -> bytes:
        return make_subset(list(subset))

    def add_objects(doc, fontname, subset):
        ref = add_subset_objects(doc, fontname, subset)
        stream = doc.idToObject.get(f"fontFile:{face.filename}({fontname})")
        if stream is not None and stream.filters:
            stream.filters = [_FONT_FILE_FLATE]
        return ref

    face.makeSubset = lambda subset: subset_bytes(tuple(subset))
    face.addSubsetObjects = add_objects
    add_font_objects = font.addObjects

    def add_font_objects_with_known_widths(doc) -> None:
        add_font_objects(doc)
        basic = doc.idToObject.get("BasicFonts")
        for pdf_font in getattr(basic, "dict", {}).values():
            widths = getattr(pdf_font, "Widths", None)
            if type(widths) is PDFArray and getattr(pdf_font, "__Comment__", "").startswith(
                f"Font {font.fontName} subset"
            ):
                pdf_font.Widths = _widths_array(tuple(widths.sequence))

    font.addObjects = add_font_objects_with_known_widths
    return font


class _FormattedArray(PDFArray):
    """A PDF array of plain numbers formatted once (a subset's 128 glyph widths)."""

    def __init__(self, sequence: tuple[int, ...]) -> None:
        super().__init__(sequence)
        self._formatted: bytes | None = None

    def format(self, document, IND=b"\n ") -> bytes:
        if self._formatted is None:
            self._formatted = super().format(document, IND)
        return self._formatted


@functools.lru_cache(maxsize=SUBSET_CACHE_SIZE)
def _widths_array(widths: tuple[int, ...]) -> _FormattedArray:
    return _FormattedArray(widths)


@functools.cache
def register_fonts() -> None:
    """Register the fonts once per process (parsing the TTFs is the slow part)."""
    pdfmetrics.registerFont(_remember_subsets(TTFont(SANS, str(FONT_DIR / "DejaVuSans.ttf"))))
    pdfmetrics.registerFont(
        _remember_subsets(TTFont(SANS_BOLD, str(FONT_DIR / "DejaVuSans-Bold.ttf")))
    )
    for bold in (0, 1):
        for italic in (0, 1):
            addMapping(SANS, bold, italic, SANS_BOLD if bold else SANS)
    pdfmetrics.registerFont(
        _remember_subsets(TTFont(CJK, str(FONT_DIR / "DroidSansFallbackFull.ttf")))
    )
    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONTS["ko"]))
    for name in sorted(set(CJK_FONTS.values())):
        # No bold CJK faces: <b> around a CJK run keeps the regular face instead of failing.
        for bold in (0, 1):
            for italic in (0, 1):
                addMapping(name, bold, italic, name)


def has_cjk(text: str) -> bool:
    return _CJK_RE.search(text) is not None


def cjk_font_for(text: str) -> str:
    if _KANA_RE.search(text):
        return CJK_FONTS["ja"]
    if _HANGUL_RE.search(text):
        return CJK_FONTS["ko"]
    return CJK_FONTS["zh"]


def runs(text: str, base_font: str) -> list[tuple[str, str]]:
    """Split text into (font, chunk) runs: CJK chunks in their CID font, the rest in base_font.

    Text is NFC-normalised first: names typed on some systems arrive decomposed ("e" + U+0301),
    and reportlab does not position combining marks, so "é" must be one precomposed glyph.
    """
    text = unicodedata.normalize("NFC", text).replace("\t", " ")
    if not has_cjk(text):
        return [(base_font, text)] if text else []
    face = cjk_font_for(text)
    out: list[tuple[str, str]] = []
    pos = 0
    for match in _CJK_RE.finditer(text):
        if match.start() > pos:
            out.append((base_font, text[pos : match.start()]))
        out.append((face, match.group()))
        pos = match.end()
    if pos < len(text):
        out.append((base_font, text[pos:]))
    return out
