"""Synthetic dialogues with exact speaker turns, for diarization (espeak-ng and sox, no downloads).

Each turn is spoken by its speaker's voice (an espeak-ng voice and variant, then a sox
pitch shift and tempo), trimmed of its own leading and trailing silence, and the turns
are joined with seeded pauses, so the reference times come from sample counts.  Nothing is random
but the seeded pauses (sox runs without dither), so a build is the same byte for byte.
``python -m bench.dialogues OUT_DIR`` builds the set and prints it.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import wave
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

RATE = 16000
VERSION = 2  # bump when the way a dialogue is built changes: every manifest is then stale
GAP = (0.25, 1.0)  # seconds of silence between turns
TRIM = ["silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"]


@dataclass(frozen=True)
class Turn:
    speaker: str
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Dialogue:
    name: str
    path: Path
    rttm: Path
    language: str
    turns: tuple[Turn, ...]

    @property
    def speakers(self) -> int:
        return len({turn.speaker for turn in self.turns})

    @property
    def seconds(self) -> float:
        """The audio's length, read from the WAV header."""
        with wave.open(str(self.path)) as audio:
            return audio.getnframes() / audio.getframerate()


@dataclass(frozen=True)
class Voice:
    """``espeak`` is an espeak-ng voice and variant; ``pitch`` is sox's shift in cents."""

    espeak: str
    pitch: int = 0
    tempo: float = 1.0
    words_per_minute: int = 160
    gap: int = 0  # espeak-ng's pause between words (-g, 10 ms units): Russian is recognised far better with some


@dataclass(frozen=True)
class Script:
    name: str
    language: str
    voices: tuple[tuple[str, Voice], ...]
    lines: tuple[tuple[str, str], ...]  # (speaker, text)
    seed: int
    phone: bool = False  # band-limited to 300-3400 Hz and saved at 8 kHz


def script(name: str, language: str, voices: dict[str, Voice], text: str, seed: int, phone: bool = False) -> Script:
    """``text`` holds one turn a line, ``A: words``."""
    lines = []
    for line in text.strip().splitlines():
        speaker, words = line.split(":", 1)
        lines.append((speaker.strip(), words.strip()))
    return Script(name, language, tuple(voices.items()), tuple(lines), seed, phone)


EN_TWO = """
A: Good afternoon, you are through to customer support. My name is Emma, how can I help you today?
B: Hi Emma. My internet has been cutting out every evening since Monday, and it is driving me mad.
A: I am sorry to hear that. Could you give me the account number or the postcode, please?
B: Sure, the postcode is S W one A, two A A. The account is under the name Peter Collins.
A: Thank you, Mr Collins. I can see your router was online this morning. When does it drop?
B: Usually around eight, when the kids start streaming. The light on the router goes orange.
A: That sounds like the line is losing sync. I am going to run a quick test from our side, it takes about a minute.
B: No problem, I will wait.
A: Right, the test shows a lot of noise on the line. It is probably a fault outside your house.
B: So it is not something I did? I moved the router last week, that is why I was worried.
A: No, it is not your router. I will book an engineer to check the line. Is Thursday morning any good for you?
B: Thursday morning is fine. Will I get a text before they arrive?
A: Yes, you will get a message the evening before, and another one when the engineer is on the way.
B: Brilliant. Thanks a lot for your help, Emma.
"""

RU_TWO = """
A: Добрый день, клиника «Здоровье», меня зовут Анна. Чем я могу вам помочь?
B: Здравствуйте. Я хотел бы записаться к терапевту, желательно на этой неделе.
A: Конечно. Вы уже были у нас раньше, или это первый визит?
B: Я был у вас прошлой осенью, моя фамилия Соколов, Игорь Петрович.
A: Да, я вижу вашу карту. Что вас беспокоит, если не секрет?
B: Уже неделю держится температура, и сильно болит горло по утрам.
A: Понятно. Ближайшее свободное время у доктора Смирновой в четверг, в десять тридцать.
B: В четверг утром я работаю. А вечером ничего нет?
A: Есть окно в пятницу, в восемнадцать ноль ноль. Вам так будет удобно?
B: Да, пятница подходит. Нужно что-нибудь взять с собой?
A: Возьмите паспорт и полис. И, пожалуйста, приходите за десять минут до приёма.
B: Хорошо, спасибо большое.
A: Одну минуту, я отправлю вам сообщение с адресом и временем приёма.
B: Спасибо. А если я вдруг не смогу прийти, как лучше отменить запись?
A: Просто позвоните нам или ответьте на сообщение, хотя бы за день.
B: Понял, так и сделаю. До свидания.
A: Всего доброго, выздоравливайте.
"""

PHONE = """
A: Roadside assistance, this is Dave speaking. Are you and everyone in the car safe right now?
B: Yes, we are fine, thank you. We are on the hard shoulder, the car just lost power on the motorway.
A: Okay, good. Can you tell me exactly where you are? Is there a marker post near you?
B: There is a blue sign just behind us. It says one four seven, and the letter B.
A: Thank you. That puts you on the northbound side, just past junction twelve. What is the car?
B: It is a grey Ford Focus, the registration is L K sixty eight, X Y Z.
A: Did you notice any warning lights or strange noises before it stopped?
B: The battery light came on a few minutes before, and then the radio went off.
A: That sounds like the alternator. Please stay behind the barrier, away from the traffic.
B: We are already out of the car. How long will the patrol take?
A: The nearest patrol is about forty minutes away. I will send you a text with a tracking link.
B: Forty minutes is okay. My phone battery is low though, at about ten percent.
A: Then keep the phone for emergencies. The patrol will call this number when he is close.
B: All right. Thank you very much, Dave.
"""

EN_THREE = """
A: Okay, let's get started. The main thing today is whether we can still ship the new release on Friday.
B: From the testing side it looks good. We closed all the critical bugs yesterday afternoon.
C: The backend is ready too, but the database migration still takes almost an hour on the big customers.
A: An hour is too long. Can we run it in the background before the switch?
C: Partly. We can copy the old data first, and only move the last day during the upgrade window.
B: If we do that, I need one more day to test the copy on the staging server.
A: So Monday instead of Friday. Honestly, I would rather be late than break a big customer.
C: Agreed. I will write the background copy today and hand it over tomorrow morning.
B: Please send me the steps as well, so that I can write the checklist for the support team.
A: Good. And the release notes, who is taking them this time?
B: I can take them, as long as somebody reviews them before Monday.
C: I will review them. Let's also warn the two largest customers about the new date.
A: I will call them this afternoon. Anything else? No? Great, thanks everyone.
"""

INTERJECTION = """
A: So the first thing you do when you arrive is go to the front desk and ask for a visitor badge.
B: Okay.
A: They will ask for your name and the name of the person you are meeting, so say you are seeing Mrs Patel from finance.
B: Alright.
A: Then take the lift to the fourth floor. When you come out, turn left and walk down to the glass doors at the end.
B: I see.
A: The doors are locked, but there is a small bell on the wall. Ring it once and somebody will come and let you in.
B: Got it.
A: And please bring the signed contract and a copy of your passport, because we cannot start the paperwork without them.
B: Okay. What time should I be there?
A: The meeting is at half past nine, but come ten minutes early, the security check can take a while in the morning.
B: Mm-hmm.
A: Parking is free in the visitor area behind the building, just leave the ticket on the dashboard.
B: Right. Thanks, that is really clear.
"""

RU_SAME = """
A: Слушай, Саша, у меня машина опять не заводится по утрам. Ты не посмотришь?
B: Посмотрю, конечно. А что именно происходит, стартер крутит или вообще тишина?
A: Крутит, но очень медленно, как будто ему тяжело. А потом всё, щелчок и ничего.
B: Похоже на аккумулятор. Сколько ему лет, ты помнишь?
A: Честно говоря, не помню. Кажется, ставили ещё при прошлом хозяине, лет пять назад.
B: Ну вот. Зимой старый аккумулятор первым и сдаётся. Давай я его сначала проверю тестером.
A: Давай. Если что, новый купить не проблема. Главное, чтобы не генератор.
B: Генератор проверим заодно. Заведём машину и посмотрим напряжение на клеммах.
A: А это долго? Мне к обеду нужно быть в городе.
B: Минут двадцать, не больше. Подъезжай ко мне в гараж к девяти утра.
A: Договорились. Я возьму кофе на двоих, с меня завтрак.
B: Отлично. И не забудь ключи от капота, у тебя там замок.
A: Точно, совсем забыл. Они лежат в бардачке, я их возьму.
B: Тогда до завтра. Если будет сильный мороз, лучше позвони заранее.
"""

MONOLOGUE = """
A: Hi, this is Laura from the dental practice on Church Street, calling for Mr James Turner.
A: I am calling about your appointment next Tuesday at half past two.
A: Unfortunately, the doctor has to be at a training course that afternoon, so we need to move it.
A: We can offer you Wednesday morning at nine, or Thursday afternoon at four.
A: If neither of those works, just let us know a time that suits you, and we will try to fit you in.
A: Please call us back on the usual number, or reply to the text message we sent this morning.
A: Thank you, and sorry for the trouble. Have a lovely day.
"""

SHORT = """
A: Hello, Marco's Pizza. What can I get for you tonight?
B: Hi, I would like one large margherita and a garlic bread, please.
A: Of course. Is that for delivery or collection?
B: Delivery, please, to twelve Station Road.
A: Lovely, that is eighteen pounds fifty, and it will be with you in about thirty minutes.
"""

SET: dict[str, Script] = {
    s.name: s
    for s in [
        script("en-two", "en", {"A": Voice("en-us+f2", pitch=100), "B": Voice("en-gb+m3", pitch=-150)}, EN_TWO, 1),
        script("ru-two", "ru", {"A": Voice("ru+f5", words_per_minute=150, gap=3),
                                "B": Voice("ru+m6", pitch=-100, words_per_minute=150, gap=3)}, RU_TWO, 2),
        script("phone-8k", "en", {"A": Voice("en-us+m7", pitch=-100), "B": Voice("en+f4", pitch=50, tempo=1.05)},
               PHONE, 3, phone=True),
        script("en-three", "en",
               {"A": Voice("en-us+m3"), "B": Voice("en-gb+f2", pitch=100),
                "C": Voice("en+m7", pitch=-250, tempo=0.95)}, EN_THREE, 4),
        script("interjection", "en", {"A": Voice("en-gb+m1", pitch=-50), "B": Voice("en-us+f3", pitch=100)},
               INTERJECTION, 5),
        script("ru-same-gender", "ru",
               {"A": Voice("ru+m6", pitch=-150, tempo=0.95, words_per_minute=150, gap=3),
                "B": Voice("ru", pitch=100, tempo=1.05, words_per_minute=150, gap=3)}, RU_SAME, 6),
        script("en-monologue", "en", {"A": Voice("en-us+m4", pitch=-50)}, MONOLOGUE, 7),
    ]
}
TWO_SPEAKER = script("two-speaker", "en", {"A": Voice("en-us+f2", pitch=100), "B": Voice("en-gb+m3", pitch=-150)},
                     SHORT, 8)


def build(folder: Path, names: Iterable[str] | None = None) -> list[Dialogue]:
    """The dialogues of ``SET`` named (all when ``None``) under ``folder``, built or reused."""
    return [built(folder, SET[name]) for name in (SET if names is None else names)]


def two_speaker(folder: Path) -> Dialogue:
    """A short English dialogue (about 20 s, five turns) for an end-to-end test."""
    return built(folder, TWO_SPEAKER)


def built(folder: Path, spec: Script) -> Dialogue:
    """``spec`` as ``folder/<name>.wav`` and ``.rttm``; a manifest (``.json``) records what they were built from,
    so the files are reused while it matches."""
    folder.mkdir(parents=True, exist_ok=True)
    path, manifest = folder / f"{spec.name}.wav", folder / f"{spec.name}.json"
    recipe = {"version": VERSION, "script": json.loads(json.dumps(asdict(spec)))}
    if manifest.exists() and path.exists() and (folder / f"{spec.name}.rttm").exists():
        recorded = json.loads(manifest.read_text())
        if recorded.get("recipe") == recipe:
            return dialogue_of(spec, path, recorded["turns"])
    turns = synthesise(spec, path)
    dialogue = dialogue_of(spec, path, [asdict(turn) for turn in turns])
    write_rttm(dialogue)
    manifest.write_text(json.dumps({"recipe": recipe, "turns": [asdict(turn) for turn in turns]}, ensure_ascii=False,
                                   indent=1))
    return dialogue


def dialogue_of(spec: Script, path: Path, turns: list[dict[str, Any]]) -> Dialogue:
    return Dialogue(spec.name, path, path.with_suffix(".rttm"), spec.language, tuple(Turn(**turn) for turn in turns))


def synthesise(spec: Script, path: Path) -> list[Turn]:
    """Speaks each line, joins them with seeded pauses into ``path``; the turns' times come from sample counts."""
    voices = dict(spec.voices)
    rng = random.Random(spec.seed)
    pieces: list[np.ndarray] = []
    turns: list[Turn] = []
    at = 0
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{spec.name}-") as scratch:
        for n, (speaker, text) in enumerate(spec.lines):
            if n:
                gap = round(rng.uniform(*GAP) * RATE)
                pieces.append(np.zeros(gap, dtype=np.int16))
                at += gap
            samples = spoken(Path(scratch) / f"{n:03d}", voices[speaker], text)
            pieces.append(samples)
            turns.append(Turn(speaker, round(at / RATE, 4), round((at + len(samples)) / RATE, 4), text))
            at += len(samples)
        joined = Path(scratch) / "joined.wav"
        write_wav(joined, np.concatenate(pieces))
        if spec.phone:
            sox(joined, path, "sinc", "300-3400", "rate", "8000")
        else:
            joined.replace(path)
    return turns


def spoken(stem: Path, voice: Voice, text: str) -> np.ndarray:
    """``text`` in ``voice``, trimmed of silence at both ends, as 16 kHz mono samples."""
    raw, done = stem.with_suffix(".raw.wav"), stem.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-v", voice.espeak, "-s", str(voice.words_per_minute), "-g", str(voice.gap),
                    "-w", str(raw), text],
                   check=True)
    effects = []
    if voice.pitch:
        effects += ["pitch", str(voice.pitch)]
    if voice.tempo != 1.0:
        effects += ["tempo", "-s", str(voice.tempo)]
    sox(raw, done, *effects, "norm", "-3", *TRIM, "rate", str(RATE))
    samples = read_wav(done)
    if len(samples) == 0:
        raise RuntimeError(f"espeak-ng said nothing for {text!r}")
    return samples


def sox(source: Path, target: Path, *effects: str) -> None:
    subprocess.run(["sox", "-V1", "-D", str(source), "-b", "16", "-c", "1", str(target), *effects], check=True)


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as audio:
        if (audio.getnchannels(), audio.getsampwidth(), audio.getframerate()) != (1, 2, RATE):
            raise ValueError(f"{path} is not 16 kHz 16-bit mono")
        return np.frombuffer(audio.readframes(audio.getnframes()), dtype=np.int16)


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(RATE)
        audio.writeframes(samples.astype(np.int16).tobytes())


def write_rttm(dialogue: Dialogue) -> Path:
    """The reference turns as RTTM lines at ``dialogue.rttm``."""
    lines = [f"SPEAKER {dialogue.name} 1 {turn.start:.3f} {turn.end - turn.start:.3f} <NA> <NA> {turn.speaker}"
             " <NA> <NA>" for turn in dialogue.turns]
    dialogue.rttm.write_text("\n".join(lines) + "\n")
    return dialogue.rttm


def speaker_at(dialogue: Dialogue, t: float) -> str | None:
    """The reference speaker whose turn covers ``t``; ``None`` in the pauses."""
    for turn in dialogue.turns:
        if turn.start <= t < turn.end:
            return turn.speaker
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.dialogues OUT_DIR", file=sys.stderr)
        return 2
    print(f"{'name':<16} {'language':<8} {'speakers':>8} {'seconds':>8} {'turns':>5}")
    for dialogue in build(Path(argv[0])):
        print(f"{dialogue.name:<16} {dialogue.language:<8} {dialogue.speakers:>8} {dialogue.seconds:>8.1f} "
              f"{len(dialogue.turns):>5}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
