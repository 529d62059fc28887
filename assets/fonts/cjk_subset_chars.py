"""The characters kept in NotoSansCJKsc-Regular-subset.otf (see README.md in this folder).

GB2312 level 1 (bytes 0xB0A1-0xD7F9: the 3755 most common hanzi), ASCII, Latin-1, general
punctuation, the minus sign, CJK symbols and punctuation, full-width forms, and every character
of the files named on the command line (the translation table src/viz/i18n.rs). Prints them,
sorted, as one line for `pyftsubset --text-file`. Standard library only.
"""
import sys

chars = set()
for hi in range(0xB0, 0xD8):
    for lo in range(0xA1, 0xFF):
        try:
            chars.add(bytes([hi, lo]).decode("gb2312"))
        except UnicodeDecodeError:  # the unassigned end of row 0xD7
            pass
for a, b in [(0x20, 0x7E), (0xA0, 0xFF), (0x2010, 0x2027), (0x2030, 0x203A), (0x2212, 0x2212),
             (0x3000, 0x303F), (0xFF01, 0xFF5E)]:
    chars.update(chr(c) for c in range(a, b + 1))
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        chars.update(c for c in f.read() if ord(c) >= 0x20)
sys.stdout.write("".join(sorted(chars)))
