"""What the demo generates: settings (`DemoConfig`), one `ClipPlan` per clip with its unimodal and
multimodal scores on the CH-SIMS v2 grid, and the English transcript built from word lists."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aemt.errors import UserError

WEIGHTS = (0.4, 0.3, 0.3)  # multimodal label = clip(0.4 T + 0.3 A + 0.3 V + noise), on the 0.2 grid
P_DISAGREE = 0.35  # share of clips on which one modality contradicts the others
GRID = np.round(np.arange(-5, 6) * 0.2, 1)  # CH-SIMS v2 label grid, multiples of 0.2 in [-1, 1]


@dataclass(frozen=True)
class FaceSource:
    """A bundled face photo; centre, width and mouth corners measured with MediaPipe landmarks."""

    name: str
    centre: tuple[float, float]  # (x, y) photo pixels, mean of the 478 landmarks
    width: float  # landmark extent in x, photo pixels
    corners: tuple[tuple[float, float], tuple[float, float]]  # mouth corners (landmarks 61, 291)


FACES = (
    FaceSource("astronaut", (224.0, 123.0), 90.0, ((202.0, 139.0), (244.0, 140.0))),
    FaceSource("grace_hopper", (266.0, 233.0), 185.0, ((234.0, 279.0), (302.0, 277.0))),
)


@dataclass(frozen=True)
class DemoConfig:
    """What to generate; `generate()` fills it from its arguments."""

    n_train: int = 36
    n_valid: int = 12
    n_test: int = 12
    n_unlabeled: int = 30
    seconds: float = 3.0
    fps: int = 15
    seed: int = 0
    size: int = 256  # square frame side in pixels
    sample_rate: int = 16000  # Hz, mono
    clips_per_video: int = 3

    def validate(self) -> None:
        counts = (self.n_train, self.n_valid, self.n_test, self.n_unlabeled)
        if min(counts) < 0 or self.n_train < 1:
            raise UserError(f"demo-data: clip counts must be >= 0 with --train >= 1, got {counts}")
        if not 1.0 <= self.seconds <= 30.0:
            raise UserError(f"demo-data: --seconds must be in [1, 30], got {self.seconds}")
        if not 5 <= self.fps <= 60:
            raise UserError(f"demo-data: --fps must be in [5, 60], got {self.fps}")


@dataclass(frozen=True)
class ClipPlan:
    """One clip: identifiers, transcript, unimodal and multimodal scores, per-video looks and voice."""

    video_id: str
    clip_id: str
    mode: str  # train / valid / test, or "" for unlabeled clips
    text: str
    label: float
    label_T: float
    label_A: float
    label_V: float
    face: int  # index into FACES
    background: tuple[int, int, int]  # RGB
    f0_base: float  # Hz, the speaker's neutral pitch
    seed: int  # seeds the clip's own random stream


def _snap(x: float) -> float:
    """Clip to [-1, 1] and round to the 0.2 grid (no negative zero)."""
    return float(np.round(np.round(np.clip(x, -1.0, 1.0) / 0.2) * 0.2, 1)) + 0.0


def _draw_scores(rng: np.random.Generator) -> tuple[float, float, float, float]:
    """(label_T, label_A, label_V, label): a shared sentiment, per-modality noise, sometimes a dissenter."""
    base = float(rng.choice(GRID))
    uni = [_snap(base + rng.normal(0.0, 0.15)) for _ in range(3)]
    if rng.random() < P_DISAGREE:
        sign = -np.sign(base) if base != 0 else rng.choice([-1.0, 1.0])
        uni[rng.integers(3)] = _snap(sign * rng.choice([0.4, 0.6, 0.8, 1.0]))
    label = _snap(float(np.dot(WEIGHTS, uni)) + rng.normal(0.0, 0.04))
    return uni[0], uni[1], uni[2], label


ADJECTIVES = {  # (polarity sign, strong?) -> words
    (1, False): "nice decent pleasant good fine".split(),
    (1, True): "great excellent wonderful amazing fantastic brilliant".split(),
    (-1, False): "mediocre dull tiring bad disappointing".split(),
    (-1, True): "terrible awful horrible dreadful".split(),
    (0, False): "okay ordinary average normal standard typical".split(),
}
INTENSIFIERS = {1: "somewhat|kind of|fairly", 2: "quite|pretty|rather", 3: "", 4: "really|very"}
INTENSIFIERS[5] = "absolutely|extremely|incredibly"
TOPICS = "the movie|the food|the hotel|this phone|the service|the show|the trip|the book".split("|")
TOPICS += ["the concert", "the new car", "the meeting", "the game"]
FILLERS = ["um", "well", "you know", "so", "i mean", "actually", "like", "uh"]
TEMPLATES = "{f} i think {t} was {a}|{f} {t} was {a}|honestly {t} is {a}|{t} was {a} i guess"
CLOSERS = {
    1: ["i loved every minute", "i would recommend it", "it made me happy", "i want to go again"],
    -1: ["i hated it", "i would not recommend it", "it made me angry", "what a waste of time"],
    0: ["i went there last week", "we talked about it later", "that is all i remember"],
}


def make_text(polarity: float, rng: np.random.Generator) -> str:
    """An English transcript whose sentiment words follow `polarity` (a score on the 0.2 grid)."""
    strength, sign = int(round(abs(polarity) * 5)), int(np.sign(polarity))
    words = ADJECTIVES[(sign, strength >= 3)]
    adjective = str(rng.choice(words))
    if INTENSIFIERS.get(strength):
        adjective = f"{rng.choice(INTENSIFIERS[strength].split('|'))} {adjective}"
    template, topic = str(rng.choice(TEMPLATES.split("|"))), str(rng.choice(TOPICS))
    parts = [template.format(f=rng.choice(FILLERS), t=topic, a=adjective)]
    if strength >= 3:  # strong polarity: a second sentiment phrase
        parts.append(str(rng.choice(CLOSERS[sign])))
    elif rng.random() < 0.5:
        parts.append(str(rng.choice(CLOSERS[0])))
    text = ". ".join(p.capitalize() for p in parts) + "."
    return text.replace(" i ", " I ")


def plan_clips(cfg: DemoConfig) -> list[ClipPlan]:
    """Deterministic plan of every clip: labelled (train, valid, test) first, then unlabeled."""
    rng = np.random.default_rng(cfg.seed)
    groups = [("train", cfg.n_train), ("valid", cfg.n_valid), ("test", cfg.n_test)]
    groups.append(("", cfg.n_unlabeled))
    plans: list[ClipPlan] = []
    video = 0
    for mode, count in groups:
        for start in range(0, count, cfg.clips_per_video):  # videos never span two splits
            face = int(rng.integers(len(FACES)))
            background = tuple(int(c) for c in rng.integers(60, 200, size=3))
            f0_base = float(rng.uniform(185.0, 215.0))
            for j in range(min(cfg.clips_per_video, count - start)):
                t, a, v, m = _draw_scores(rng)
                text = make_text(t, rng)
                seed = int(rng.integers(2**31))
                ids, look = (f"demo_{video:03d}", f"{j + 1:04d}"), (face, background, f0_base)
                plans.append(ClipPlan(*ids, mode, text, m, t, a, v, *look, seed))
            video += 1
    return plans
