"""Caption motion suppression (paper §3.3): the text must not contradict the user's camera actions.

:func:`suppress_motion` removes phrases that describe **camera** motion and keeps everything else. The
phrase set (all case-insensitive, whole words):

1. **Camera as subject** — ``(the|a|our) (camera|view|viewpoint|shot|pov|point of view|perspective|lens|
   footage|video|we|viewer)`` followed by optional adverbs (slowly, smoothly, gently, quickly, steadily,
   gradually, then, continuously, …) and a motion verb (pans, tilts, zooms, dollies, trucks, tracks, cranes,
   moves, glides, rotates, turns, sweeps, orbits, pushes, pulls, travels, flies, drifts, follows, advances,
   walks, goes, heads, rolls, looks, circles, swings, approaches, retreats, … in any tense), then optional
   directions (left, right, up, down, in, out, forward(s), backward(s), ahead, around, away, closer, back,
   from X to Y) and one trailing preposition (across, along, over, through, toward(s), into, past, around,
   to, to reveal, on, onto, by, …). The preposition's object is kept: "the camera slowly pans left across a
   red wall" → "a red wall".
2. **Camera-motion gerunds/nouns** — ``(camera) panning|tilting|zooming|dollying|trucking|tracking|craning|
   orbiting (+ directions + preposition)``, ``zoom(s|ed) in|out``, ``pan(s|ned) left|right|across|up|down``,
   ``tilt(s|ed) up|down``, ``camera movement|motion|move``.
3. **Shot types** — ``(a|an) (slow|smooth|…) dolly|tracking|panning|pan|zoom|crane|orbit(ing)|push-in|
   pull-out|pull-back|dolly-zoom|drone|fpv|handheld|steadicam|fly-through|flythrough|walkthrough|
   walk-through|pov|first-person shot|view|footage|video (of)``.
4. **First-person motion at the start of a clause** — ``(we are|we're|i am|the viewer is)? moving|walking|
   going|heading|advancing|travel(l)ing|flying|gliding|stepping|backing|strafing|turning|rotating|
   looking|panning|zooming + direction``. Only at the start of a caption or clause (after , ; . : — or
   "and/then/while/as"), where its subject is the implied camera.

Object motion is kept on purpose: "a car moving forward", "people walking along the street", "a dog turns
left" describe the scene, not the camera, and do not contradict the actions. So are words that only look like
motion: "a panel on the left", "a frying pan", "train tracks", "a panoramic view", "a zoom lens", "a camera
on a tripod".

After removal, dangling connectors and punctuation are tidied and the first letter keeps its case. A caption
that was nothing but camera motion becomes "".
"""

from __future__ import annotations

import re

_ADVERB = (r"(?:slowly|smoothly|gently|quickly|rapidly|steadily|gradually|then|continuously|carefully|"
           r"fluidly|swiftly|subtly|slightly|briskly|leisurely|also|now|further|again|immediately)")
_VERBS = ("pan", "tilt", "zoom", "dolly", "truck", "track", "crane", "move", "glide", "rotate", "turn", "sweep",
          "orbit", "push", "pull", "travel", "fly", "drift", "follow", "advance", "walk", "go", "head", "roll",
          "look", "circle", "swing", "approach", "retreat", "ascend", "descend", "rise", "lower", "raise", "spin",
          "swivel", "shift", "slide", "creep", "proceed", "navigate", "explore", "wander", "cruise", "reveal",
          "capture", "come", "step", "strafe", "back", "climb", "dive", "soar", "hover", "float", "race", "zip")
_IRREGULAR = ("swept", "flew", "flown", "went", "gone", "rose", "risen", "spun", "swung", "slid", "crept", "came",
              "dove", "panned", "panning", "stepped", "stepping", "travelled", "travelling", "swivelled",
              "swivelling")


def _inflect(v: str) -> list[str]:
    """Base verb -> base, 3rd person, past and gerund forms (regular spelling)."""
    if v.endswith("e"):
        return [v, v + "s", v + "d", v[:-1] + "ing"]
    if v.endswith("y") and v[-2] not in "aeiou":
        return [v, v[:-1] + "ies", v[:-1] + "ied", v + "ing"]
    if v.endswith(("sh", "ch", "o", "x")):
        return [v, v + "es", v + "ed", v + "ing"]
    return [v, v + "s", v + "ed", v + "ing"]


_VERB = r"(?:" + "|".join(sorted({f for v in _VERBS for f in _inflect(v)} | set(_IRREGULAR),
                                  key=len, reverse=True)) + r")"
_DIRECTION = (r"(?:left|right|up|down|upward(?:s)?|downward(?:s)?|in|out|inward|outward|forward(?:s)?|"
              r"backward(?:s)?|ahead|around|round|away|closer|back|sideways|vertically|horizontally|"
              r"clockwise|counter-?clockwise|anti-?clockwise|slowly|smoothly|gently|quickly|steadily|gradually|"
              r"from (?:the )?(?:left|right|top|bottom|side) to (?:the )?(?:left|right|top|bottom|other side))")
_PREP = (r"(?:across|along|over|through|toward(?:s)?|into|past|around|to reveal|to show|to see|to|onto|on|by|"
         r"alongside|down|up|in|out of|within|inside|throughout|above|below|under|beneath|near|at|"
         r"showing|revealing|capturing|of)")
_SUBJECT = (r"(?:(?:the|a|our|this)\s+)?(?:camera(?:man|\s+operator)?|view(?:point)?|shot|pov|point of view|"
            r"perspective|lens|footage|video|viewer|we|i)")
_SHOT_ADJ = (r"(?:(?:slow|smooth|gentle|quick|fast|steady|long|continuous|sweeping|cinematic|wide|single|brief|"
             r"aerial|low|high|static)\s+)*")
_SHOT_KIND = (r"(?:dolly|tracking|panning|pan|zoom|crane|orbit(?:ing)?|push-in|pull-out|pull-back|dolly-zoom|"
              r"drone|fpv|handheld|hand-held|steadicam|fly-through|flythrough|walkthrough|walk-through|"
              r"pov|first-person|first person|moving camera|camera)")

_W = r"(?<![\w-])"   # word start
_E = r"(?![\w-])"    # word end

_PATTERNS: tuple[re.Pattern, ...] = tuple(re.compile(p, re.IGNORECASE) for p in (
    # 3. shot types (first, so that "tracking shot following ..." goes as a whole)
    rf"{_W}(?:(?:a|an|the|this)\s+)?{_SHOT_ADJ}(?:{_SHOT_KIND}\s+)*{_SHOT_KIND}\s+(?:shot|footage|video|sequence|"
    rf"movement|move|motion)(?:\s+(?:of|through|across|along|over|into|showing|revealing|following|capturing))?{_E}",
    # 1. camera as subject + motion verb (+ "is/are" + gerund) + directions + one preposition
    rf"{_W}{_SUBJECT}\s+(?:(?:is|are|was|were|keeps|continues to|starts to|begins to|then)\s+)?"
    rf"(?:{_ADVERB}\s+)*{_VERB}(?:\s+{_DIRECTION})*(?:\s+{_PREP})?{_E}",
    # 2. camera-motion gerunds and imperative forms
    rf"{_W}(?:camera\s+)?(?:{_ADVERB}\s+)*(?:panning|tilting|zooming|dollying|trucking|tracking|craning|orbiting)"
    rf"(?:\s+{_DIRECTION})+(?:\s+{_PREP})?{_E}",
    rf"{_W}(?:camera\s+)?(?:panning|tilting|zooming|dollying|craning)(?:\s+{_PREP})?{_E}",
    rf"{_W}(?:(?:a|an)\s+)?{_SHOT_ADJ}(?:zoom(?:s|ed)?\s+(?:in|out)|pan(?:s|ned)?\s+(?:left|right|across|up|down|"
    rf"around)|tilt(?:s|ed)?\s+(?:up|down)|dolly\s+(?:in|out))(?:\s+{_DIRECTION})*(?:\s+{_PREP})?{_E}",
    rf"{_W}camera\s+(?:movement|motion|move|moves|work|pan|tilt|zoom)(?:\s+{_PREP})?{_E}",
))

# 4. first-person motion at the start of a clause
_CLAUSE_START = r"(?:^|(?<=[,;.:!?—–-])|(?<=\band\b)|(?<=\bthen\b)|(?<=\bwhile\b)|(?<=\bas\b))"
_FIRST_PERSON = re.compile(
    rf"{_CLAUSE_START}\s*(?:(?:we are|we're|i am|i'm|the viewer is|you are|you're)\s+)?(?:{_ADVERB}\s+)*"
    r"(?:moving|walking|going|heading|advancing|travell?ing|flying|gliding|stepping|backing|strafing|turning|"
    r"rotating|looking|panning|zooming|tilting|pushing|pulling|drifting|sweeping|circling|orbiting)"
    rf"(?:\s+{_DIRECTION})+(?:\s+{_PREP})?{_E}", re.IGNORECASE)

_CONNECTOR = r"(?:and|as|while|then|with|before|after|so|,|;|:|—|–|-)"


def _tidy(text: str) -> str:
    """Collapse the gaps left by removed phrases: spaces, doubled punctuation, dangling connectors."""
    prev = None
    while prev != text:
        prev = text
        text = re.sub(r"\s+", " ", text)
        text = re.sub(r"\s+([,;:.!?])", r"\1", text)
        text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)            # ", ," -> ","
        text = re.sub(r"[,;:]\s*([.!?])", r"\1", text)                 # ", ." -> "."
        text = re.sub(r"([.!?])(?:\s*[.!?])+", r"\1", text)            # ". ." -> "."
        text = re.sub(r"(?:\b(?:and|as|while|then|with|so)\s*)+([,;:.!?]|$)", r"\1", text, flags=re.IGNORECASE)
        text = re.sub(r"([,;:.!?])\s*(?:(?:and|as|while|then|so)\b\s*)+(?=[,;:.!?]|$)", r"\1", text,
                      flags=re.IGNORECASE)
        text = re.sub(rf"^\s*{_CONNECTOR}(?:\s+|$)", "", text, flags=re.IGNORECASE)
        text = re.sub(r"^[\s,;:.!?—–-]+", "", text)
        text = text.strip(" ,;:—–-")
    return text


def suppress_motion(caption: str) -> str:
    """Remove camera-motion phrases from a caption, keeping everything else (see the module docstring)."""
    text = caption.strip()
    if not text:
        return ""
    out = text
    changed = True
    while changed:
        changed = False
        for pat in _PATTERNS + (_FIRST_PERSON,):
            new = pat.sub(" ", out)
            if new != out:
                out, changed = new, True
    if out == text:
        return text
    out = _tidy(out)
    if out and text[0].isupper():
        out = out[0].upper() + out[1:]
    out = re.sub(r"([.!?] )([a-z])", lambda m: m.group(1) + m.group(2).upper(), out)
    return out
