#!/usr/bin/env python3
"""CJK-heavy benchmark text from the system's own translations: the Chinese,
Japanese and Korean messages of /usr/share/locale/*/LC_MESSAGES/*.mo, one JSON
string per line.   python3 bench/make_cjk_text.py OUT.jsonl [MAX_BYTES]"""
import glob
import gettext
import json
import sys

out, limit = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2_000_000
n = 0
with open(out, "w", encoding="utf-8") as f:
    for lang in ("zh_CN", "zh_TW", "ja", "ko"):
        for mo in sorted(glob.glob("/usr/share/locale/%s/LC_MESSAGES/*.mo" % lang)):
            try:
                cat = gettext.GNUTranslations(open(mo, "rb"))._catalog
            except Exception:
                continue
            for k in sorted(cat, key=str):
                v = cat[k]
                if k and isinstance(v, str) and v.strip() and n < limit:
                    f.write(json.dumps(v, ensure_ascii=False) + "\n")
                    n += len(v.encode("utf-8"))
print("%s: %d bytes" % (out, n))
