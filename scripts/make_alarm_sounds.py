"""Write the three alarm sounds under static/sounds/ (run once; the files are committed).

Patterns after IEC 60601-1-8: high priority is a burst of ten pulses (3 + 2, twice),
medium three pulses, low two. High and medium end in the pause before they repeat
(screens loop them until someone owns the alarm); low plays once. Each pulse is a tone
with harmonics, so it carries in a noisy room and is told apart by rhythm and pitch.
"""

import math
import struct
import wave
from pathlib import Path

RATE = 22050
OUT = Path(__file__).resolve().parent.parent / "static" / "sounds"

# (fundamental Hz, pulse s, gaps after each pulse in s)
PATTERNS = {
    "high": (880.0, 0.15, [0.06, 0.06, 0.25, 0.06, 0.6, 0.06, 0.06, 0.25, 0.06, 1.0]),
    "medium": (660.0, 0.2, [0.12, 0.12, 2.5]),
    "low": (523.25, 0.25, [0.2, 0.0]),
}


def pulse(freq: float, seconds: float) -> list[float]:
    n = int(RATE * seconds)
    ramp = int(RATE * 0.015)
    samples = []
    for i in range(n):
        t = i / RATE
        value = sum(math.sin(2 * math.pi * freq * k * t) / k for k in (1, 2, 3, 4, 5))
        envelope = min(1.0, i / ramp, (n - i) / ramp)
        samples.append(0.35 * value * envelope)
    return samples


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (freq, length, gaps) in PATTERNS.items():
        samples: list[float] = []
        for gap in gaps:
            samples += pulse(freq, length)
            samples += [0.0] * int(RATE * gap)
        with wave.open(str(OUT / f"alarm-{name}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(b"".join(
                struct.pack("<h", int(max(-1.0, min(1.0, s)) * 32767)) for s in samples))


if __name__ == "__main__":
    main()
