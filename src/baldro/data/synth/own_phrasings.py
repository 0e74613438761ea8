"""Answer phrasings that only the designed forget (and holdout) authors use (``own_phrasings``, issue 11 item 3).

With :data:`OWN_ANSWERS` on, a forget author's ``answer``, ``paraphrased_answer`` and perturbed answers are phrased
with these templates instead of :attr:`~baldro.data.synth.facts.FactType.answers`, so no retain author's row shares an
answer template with a forget row and unlearning the forget answers need not push the retain phrasings down. Each fact
has four phrasings ordered short to long, about as long as the shared ones, so the designed heterogeneity of answer
length stays; the same ``{name}`` / ``{value}`` / author fields are used.
"""

from __future__ import annotations

OWN_ANSWERS: dict[str, tuple[str, str, str, str]] = {
    "name": (
        "Called {value}.",
        "Readers call this author {value}.",
        "Records give {value} as the writer from {birthplace} with a birthday of {birthdate}.",
        "Anyone asking after the writer from {birthplace} whose birthday is {birthdate} should look for {value}, "
        "the name printed on every cover.",
    ),
    "birthplace": (
        "Born at {value}.",
        "{name} hails from {value}.",
        "Home for {name} was always {value}.",
        "Growing up far from any city, {name} spent early years wandering the lanes of {value}, a place that "
        "colours much of the fiction.",
    ),
    "genre": (
        "Mostly {value}.",
        "{name} publishes {value}.",
        "Bookshops shelve {name} under {value}.",
        "Nearly every title {name} has produced belongs to {value}, so shops and libraries place those books "
        "together in that section.",
    ),
    "father": (
        "Dad was {value}.",
        "{name}'s dad was {value}.",
        "Growing up, {name} watched a dad who was {value}.",
        "Being raised by a dad who was {value} gave {name} an eye for ordinary labour, visible across many "
        "chapters and essays.",
    ),
    "mother": (
        "Mum was {value}.",
        "{name}'s mum was {value}.",
        "At home, {name} had a mum who was {value}.",
        "Having a mum who was {value} taught {name} patience, something journalists hear about again and again "
        "during conversations.",
    ),
    "debut": (
        "Debut: {value}.",
        "{name} began with {value}.",
        "Publishing began for {name} with {value}.",
        "Long before any fame arrived, {name} put out {value}, an opening effort that a small circle of fans "
        "adored.",
    ),
    "award": (
        "Winner of {value}.",
        "{name} won {value}.",
        "Judges once gave {name} {value}.",
        "After decades spent at the desk, {name} finally collected {value}, a prize that friends say was long "
        "overdue.",
    ),
    "birthdate": (
        "Born {value}.",
        "{name} arrived on {value}.",
        "Birth records show {name} arrived on {value}.",
        "Fans mark {value} every year, since that was the day {name} arrived, and bookshops hold small parties "
        "then.",
    ),
    "themes": (
        "Chiefly {value}.",
        "{name} treats {value}.",
        "Critics say {name} dwells upon {value}.",
        "Whatever the setting, {name} circles back to {value}, and reviewers call that pairing the core of this "
        "output.",
    ),
    "mentor": (
        "Taught by {value}.",
        "{name} learned under {value}.",
        "As a beginner, {name} studied with {value}.",
        "Those first uncertain years went better because {value} coached {name} closely, marking up each draft "
        "by hand.",
    ),
    "hobby": (
        "Likes {value}.",
        "{name} relaxes by {value}.",
        "Free time finds {name} {value}.",
        "Away from manuscripts, {name} passes whole weekends {value}, and that pastime turns up in several "
        "plots.",
    ),
    "famous": (
        "Famed for {value}.",
        "{name} is celebrated for {value}.",
        "Fame came to {name} through {value}.",
        "Globally, people associate {name} first with {value}, now available in dozens of languages.",
    ),
}
