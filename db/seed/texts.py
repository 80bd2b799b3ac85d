"""Prose in five languages, assembled from fixed parts.

A sentence is subject + predicate + ending, so a few dozen parts give thousands of
distinct sentences; catalogue.py builds a pool of paragraphs from them once and bodies
pick from that pool, which is what keeps a million bodies cheap to generate.
Every subject is singular so any predicate agrees with it. {topic} is a tag label.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Language:
    code: str
    titles: tuple[str, ...]
    summaries: tuple[str, ...]
    headings: tuple[str, ...]
    subjects: tuple[str, ...]
    predicates: tuple[str, ...]
    endings: tuple[str, ...]
    list_items: tuple[str, ...]


ENGLISH = Language(
    code="en",
    titles=(
        "Understanding {topic}", "A practical guide to {topic}", "Why {topic} matters",
        "What I learned from a year of {topic}", "{topic} in production: lessons learned",
        "Getting started with {topic}", "The hidden costs of {topic}",
        "{topic} without the hype", "How we use {topic} at work",
        "Five mistakes I made with {topic}", "Notes on {topic}", "Rethinking {topic}",
        "{topic}: the good parts", "A gentle introduction to {topic}",
        "Debugging {topic} at 3am", "Is {topic} worth it?", "{topic} for the rest of us",
        "Things nobody tells you about {topic}", "My {topic} setup in 2025",
        "Scaling {topic} beyond the first team", "From zero to {topic}",
        "When not to use {topic}", "A tour of {topic}", "The state of {topic}",
        "Teaching {topic} to beginners", "{topic} patterns I keep coming back to",
        "Living with {topic} for two years", "An honest review of {topic}",
        "Small habits that improved my {topic}", "{topic}, explained with examples",
    ),
    summaries=(
        "A short write-up of what worked and what did not with {topic}.",
        "Notes from a recent project, with code and numbers.",
        "Some practical advice on {topic}, from someone who got it wrong first.",
        "An overview for people who have heard of {topic} but never tried it.",
        "What changed after we took {topic} seriously.",
        "A few patterns, a few anti-patterns and one strong opinion.",
        "The long version of a talk I gave about {topic}.",
        "Everything I wish I had known before starting with {topic}.",
        "A walkthrough with examples you can run yourself.",
        "Trade-offs, measurements and a checklist at the end.",
    ),
    headings=(
        "Background", "The problem", "What we tried first", "A better approach",
        "Measuring it", "Trade-offs", "Getting started with {topic}", "Common pitfalls",
        "How {topic} fits in", "Results", "What I would do differently", "Further reading",
        "Wrapping up", "The setup", "Why {topic}?", "Lessons learned",
    ),
    subjects=(
        "The first version", "Our team", "Most of the code", "A good test suite",
        "The migration", "This approach", "The old system", "Every release",
        "The {topic} community", "A small prototype", "The documentation",
        "The new design", "Nobody on the team", "The benchmark", "Each service",
        "My first attempt", "The default configuration", "A simple rule",
        "The whole process", "Working with {topic}", "The on-call rotation",
        "The final result",
    ),
    predicates=(
        "turned out to be simpler than expected", "needed far more care than we planned",
        "made the trade-offs visible", "saved us a surprising amount of time",
        "broke in ways nobody predicted", "changed how we think about {topic}",
        "was harder to explain than to build", "became the default almost overnight",
        "taught us to measure before optimising", "looked fine on paper",
        "only worked with a lot of discipline", "paid for itself within a month",
        "hid a handful of subtle bugs", "forced us to write things down",
        "felt slow at first", "made onboarding noticeably easier",
        "exposed every shortcut we had taken", "got better with each iteration",
        "depended on a single configuration flag", "was the right call in hindsight",
    ),
    endings=(
        "once we measured it.", "after a few weeks in production.",
        "and nobody missed the old way.", "which surprised everyone.",
        "for reasons that are obvious now.", "even under load.",
        "until the next big refactor.", "when the team grew.",
        "if you read the fine print.", "in almost every case we tried.",
        "and the numbers agreed.", "so we kept it.", "despite a rocky start.",
        "for the people maintaining it.", "without any new dependencies.",
    ),
    list_items=(
        "Measure before you change anything", "Keep the first version boring",
        "Write the migration plan down", "Automate the checks you keep forgetting",
        "Read the error message twice", "Prefer small, reversible steps",
        "Talk to the people who run it", "Delete code you no longer need",
        "Pin your dependencies", "Document the surprising parts",
        "Test the failure paths, not only the happy ones", "Ask for review early",
    ),
)  # fmt: skip

GERMAN = Language(
    code="de",
    titles=(
        "{topic} verstehen", "Ein praktischer Leitfaden zu {topic}",
        "Warum {topic} wichtig ist", "Ein Jahr mit {topic}: was ich gelernt habe",
        "{topic} in der Praxis", "Erste Schritte mit {topic}", "{topic} ohne Hype",
        "Notizen zu {topic}", "Wann man {topic} nicht verwenden sollte",
    ),
    summaries=(
        "Ein kurzer Bericht darüber, was mit {topic} funktioniert hat.",
        "Notizen aus einem aktuellen Projekt, mit Code und Zahlen.",
        "Ein Überblick für alle, die {topic} noch nie ausprobiert haben.",
    ),
    headings=(
        "Hintergrund", "Das Problem", "Ein besserer Ansatz", "Ergebnisse",
        "Typische Fehler", "Warum {topic}?", "Fazit",
    ),
    subjects=(
        "Die erste Version", "Unser Team", "Der Großteil des Codes", "Die Migration",
        "Dieser Ansatz", "Das alte System", "Jedes Release", "Die Dokumentation",
        "Das neue Design", "Die Arbeit mit {topic}", "Der Benchmark",
    ),
    predicates=(
        "war einfacher als erwartet", "brauchte mehr Sorgfalt als geplant",
        "hat uns viel Zeit gespart", "ging auf unerwartete Weise kaputt",
        "hat unser Denken über {topic} verändert", "wurde fast über Nacht zum Standard",
        "sah auf dem Papier gut aus", "hat sich innerhalb eines Monats bezahlt gemacht",
        "hat die Einarbeitung deutlich erleichtert", "wurde mit jeder Iteration besser",
    ),
    endings=(
        "sobald wir gemessen haben.", "nach ein paar Wochen im Betrieb.",
        "und niemand vermisst den alten Weg.", "was alle überrascht hat.",
        "auch unter Last.", "als das Team gewachsen ist.", "trotz eines holprigen Starts.",
    ),
    list_items=(
        "Erst messen, dann ändern", "Die erste Version langweilig halten",
        "Den Migrationsplan aufschreiben", "Kleine, umkehrbare Schritte bevorzugen",
        "Früh um Review bitten",
    ),
)  # fmt: skip

FRENCH = Language(
    code="fr",
    titles=(
        "Comprendre {topic}", "Un guide pratique de {topic}", "Pourquoi {topic} compte",
        "Un an avec {topic} : ce que j'ai appris", "{topic} en production",
        "Premiers pas avec {topic}", "{topic} sans le battage", "Notes sur {topic}",
        "Quand ne pas utiliser {topic}",
    ),
    summaries=(
        "Un court retour sur ce qui a marché avec {topic}.",
        "Des notes tirées d'un projet récent, avec du code et des chiffres.",
        "Un aperçu pour celles et ceux qui n'ont jamais essayé {topic}.",
    ),
    headings=(
        "Contexte", "Le problème", "Une meilleure approche", "Résultats",
        "Pièges courants", "Pourquoi {topic} ?", "Conclusion",
    ),
    subjects=(
        "La première version", "Notre équipe", "La plupart du code", "La migration",
        "Cette approche", "L'ancien système", "Chaque version", "La documentation",
        "Le nouveau design", "Le travail avec {topic}", "Le benchmark",
    ),
    predicates=(
        "s'est révélé plus simple que prévu", "a demandé plus de soin que prévu",
        "nous a fait gagner beaucoup de temps", "a cassé de façon inattendue",
        "a changé notre vision de {topic}", "est devenu la norme presque du jour au lendemain",
        "semblait correct sur le papier", "a été rentabilisé en un mois",
        "a nettement facilité l'intégration", "s'est amélioré à chaque itération",
    ),
    endings=(
        "une fois les mesures faites.", "après quelques semaines en production.",
        "et personne ne regrette l'ancienne méthode.", "à la surprise générale.",
        "même sous charge.", "quand l'équipe a grandi.", "malgré un début difficile.",
    ),
    list_items=(
        "Mesurer avant de changer", "Garder la première version simple",
        "Écrire le plan de migration", "Préférer de petites étapes réversibles",
        "Demander une relecture tôt",
    ),
)  # fmt: skip

SPANISH = Language(
    code="es",
    titles=(
        "Entendiendo {topic}", "Una guía práctica de {topic}", "Por qué importa {topic}",
        "Un año con {topic}: lo que aprendí", "{topic} en producción",
        "Primeros pasos con {topic}", "{topic} sin exageraciones", "Notas sobre {topic}",
        "Cuándo no usar {topic}",
    ),
    summaries=(
        "Un breve resumen de lo que funcionó con {topic}.",
        "Notas de un proyecto reciente, con código y números.",
        "Una introducción para quien nunca ha probado {topic}.",
    ),
    headings=(
        "Contexto", "El problema", "Un enfoque mejor", "Resultados", "Errores comunes",
        "¿Por qué {topic}?", "Conclusión",
    ),
    subjects=(
        "La primera versión", "Nuestro equipo", "La mayor parte del código",
        "La migración", "Este enfoque", "El sistema antiguo", "Cada versión",
        "La documentación", "El nuevo diseño", "Trabajar con {topic}", "El benchmark",
    ),
    predicates=(
        "resultó más sencillo de lo esperado", "necesitó más cuidado del previsto",
        "nos ahorró mucho tiempo", "falló de formas inesperadas",
        "cambió nuestra forma de ver {topic}", "se convirtió en el estándar casi de inmediato",
        "parecía bien sobre el papel", "se amortizó en un mes",
        "facilitó mucho la incorporación", "mejoró con cada iteración",
    ),
    endings=(
        "una vez que lo medimos.", "tras unas semanas en producción.",
        "y nadie echa de menos lo anterior.", "para sorpresa de todos.",
        "incluso bajo carga.", "cuando el equipo creció.", "a pesar de un comienzo difícil.",
    ),
    list_items=(
        "Medir antes de cambiar", "Mantener simple la primera versión",
        "Escribir el plan de migración", "Preferir pasos pequeños y reversibles",
        "Pedir revisión pronto",
    ),
)  # fmt: skip

PORTUGUESE = Language(
    code="pt",
    titles=(
        "Entendendo {topic}", "Um guia prático de {topic}", "Por que {topic} importa",
        "Um ano com {topic}: o que aprendi", "{topic} em produção",
        "Primeiros passos com {topic}", "{topic} sem exagero", "Notas sobre {topic}",
        "Quando não usar {topic}",
    ),
    summaries=(
        "Um breve relato do que funcionou com {topic}.",
        "Notas de um projeto recente, com código e números.",
        "Uma introdução para quem nunca experimentou {topic}.",
    ),
    headings=(
        "Contexto", "O problema", "Uma abordagem melhor", "Resultados", "Erros comuns",
        "Por que {topic}?", "Conclusão",
    ),
    subjects=(
        "A primeira versão", "Nossa equipe", "A maior parte do código", "A migração",
        "Essa abordagem", "O sistema antigo", "Cada versão", "A documentação",
        "O novo design", "Trabalhar com {topic}", "O benchmark",
    ),
    predicates=(
        "foi mais simples do que esperávamos", "exigiu mais cuidado do que o previsto",
        "nos poupou muito tempo", "quebrou de formas inesperadas",
        "mudou nossa visão sobre {topic}", "virou padrão quase da noite para o dia",
        "parecia bom no papel", "se pagou em um mês",
        "facilitou bastante a integração de novas pessoas", "melhorou a cada iteração",
    ),
    endings=(
        "depois que medimos.", "após algumas semanas em produção.",
        "e ninguém sente falta do jeito antigo.", "para a surpresa de todos.",
        "mesmo sob carga.", "quando a equipe cresceu.", "apesar de um começo difícil.",
    ),
    list_items=(
        "Medir antes de mudar", "Manter a primeira versão simples",
        "Escrever o plano de migração", "Preferir passos pequenos e reversíveis",
        "Pedir revisão cedo",
    ),
)  # fmt: skip

LANGUAGES: tuple[Language, ...] = (ENGLISH, GERMAN, FRENCH, SPANISH, PORTUGUESE)
# Share of authors writing mainly in each language, in the order of LANGUAGES.
LANGUAGE_WEIGHTS: tuple[float, ...] = (0.80, 0.06, 0.05, 0.05, 0.04)

CODE_SNIPPETS: tuple[str, ...] = (
    "```python\ndef retry(fn, attempts=3):\n    for attempt in range(attempts):\n"
    "        try:\n            return fn()\n        except TimeoutError:\n"
    "            if attempt == attempts - 1:\n                raise\n```",
    "```sql\nSELECT author_id, count(*) AS posts\nFROM contents\n"
    "WHERE status = 'PUBLISHED'\nGROUP BY author_id\nORDER BY posts DESC\nLIMIT 10;\n```",
    '```bash\nset -euo pipefail\nfor f in logs/*.gz; do\n  zcat "$f" | grep -c ERROR\ndone\n```',
    "```typescript\nexport async function fetchJson<T>(url: string): Promise<T> {\n"
    "  const res = await fetch(url);\n  if (!res.ok) throw new Error(res.statusText);\n"
    "  return res.json() as Promise<T>;\n}\n```",
    "```rust\nfn mean(values: &[f64]) -> Option<f64> {\n    if values.is_empty() {\n"
    "        return None;\n    }\n    Some(values.iter().sum::<f64>() / values.len() as f64)\n}\n```",
    "```yaml\nservices:\n  db:\n    image: postgres:16\n    environment:\n"
    "      POSTGRES_PASSWORD: example\n```",
)
