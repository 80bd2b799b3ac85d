"""Fixed vocabularies for people and topics: every seeded name and tag comes from here.

Tags are listed roughly from most to least popular; catalogue.py weights them by
position, so the head of this list dominates the way real tag clouds do.
"""

from db.tag_ids import tag_id


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


TAGS = _words(
    """
    python javascript programming webdev rust typescript career productivity devops
    opensource go react postgresql linux machine-learning databases security design
    kubernetes testing architecture beginners tutorial ai docker cloud performance java
    css books writing startups music photography travel graphql api frontend backend
    data-science sql git aws node vue svelte kotlin swift android ios mobile csharp
    dotnet cpp c haskell elixir erlang clojure scala ocaml zig ruby rails php laravel
    django flask fastapi spring terraform ansible observability monitoring sre
    networking distributed-systems microservices serverless concurrency async
    functional-programming algorithms data-structures compilers type-systems webassembly
    embedded iot hardware robotics game-dev gaming accessibility ux ui typography
    open-data privacy cryptography blockchain llm nlp computer-vision deep-learning
    statistics analytics visualization pandas numpy jupyter r julia mathematics physics
    science space climate energy sustainability history philosophy economics education
    teaching mentoring leadership management hiring interviews remote-work mental-health
    burnout health fitness running cycling cooking coffee food gardening film television
    podcasts art comics poetry fiction reading languages linguistics culture cities
    urbanism transport architecture-design parenting personal-finance investing
    freelancing side-projects indie-hacking marketing seo content-strategy community
    events conferences meetups hackathons open-source-funding licensing documentation
    technical-writing code-review refactoring legacy-code debugging profiling caching
    redis kafka rabbitmq elasticsearch sqlite mysql mongodb cassandra clickhouse duckdb
    data-engineering etl streaming event-sourcing ddd tdd ci-cd github-actions gitlab
    nix vim emacs vscode terminal shell bash zsh dotfiles self-hosting homelab
    raspberry-pi arduino 3d-printing keyboards retro-computing unix bsd windows macos
    browsers html tailwind web-components http dns tls oauth identity rest grpc protobuf
    json yaml regex unicode i18n time-zones
    """
)

# How a tag reads inside a sentence when plain capitalisation would be wrong.
TAG_LABELS: dict[str, str] = {
    "javascript": "JavaScript", "typescript": "TypeScript", "postgresql": "PostgreSQL",
    "graphql": "GraphQL", "api": "APIs", "aws": "AWS", "sql": "SQL", "css": "CSS",
    "html": "HTML", "ios": "iOS", "csharp": "C#", "dotnet": ".NET", "cpp": "C++",
    "php": "PHP", "ai": "AI", "llm": "LLMs", "nlp": "NLP", "ux": "UX", "ui": "UI",
    "iot": "IoT", "sre": "SRE", "seo": "SEO", "ddd": "domain-driven design",
    "tdd": "test-driven development", "ci-cd": "CI/CD", "github-actions": "GitHub Actions",
    "gitlab": "GitLab", "vscode": "VS Code", "macos": "macOS", "bsd": "BSD", "dns": "DNS",
    "tls": "TLS", "oauth": "OAuth", "rest": "REST", "grpc": "gRPC", "json": "JSON",
    "yaml": "YAML", "i18n": "internationalisation", "mongodb": "MongoDB",
    "mysql": "MySQL", "sqlite": "SQLite", "duckdb": "DuckDB", "clickhouse": "ClickHouse",
    "fastapi": "FastAPI", "numpy": "NumPy", "http": "HTTP", "etl": "ETL",
    "webassembly": "WebAssembly", "node": "Node.js", "vue": "Vue", "r": "R",
    "3d-printing": "3D printing", "raspberry-pi": "Raspberry Pi", "unix": "Unix",
    "webdev": "web development", "devops": "DevOps", "opensource": "open source",
    "rabbitmq": "RabbitMQ", "protobuf": "Protocol Buffers", "dotfiles": "dotfiles",
}  # fmt: skip

# The id each tag gets (a function of its name), by position in TAGS.
TAG_IDS = tuple(tag_id(name) for name in TAGS)

# Single-word tags that are names (languages, tools) and so keep a capital mid-sentence.
PROPER_NOUNS = frozenset(
    _words(
        """
        python rust go react linux kubernetes docker java git svelte kotlin swift android
        haskell elixir erlang clojure scala ocaml zig ruby rails laravel django flask spring
        terraform ansible pandas jupyter julia redis kafka elasticsearch cassandra nix vim
        emacs bash zsh arduino windows tailwind
        """
    )
)


def tag_label(tag: str) -> str:
    """How a tag reads inside a sentence."""
    label = TAG_LABELS.get(tag)
    if label is not None:
        return label
    return tag.capitalize() if tag in PROPER_NOUNS else tag.replace("-", " ")


FIRST_NAMES = _words(
    """
    Ada Grace Alan Linus Margaret Ken Barbara Dennis Frances Edsger Radia Donald Hedy
    Tim Katherine John Mary Guido Sophie Lukas Emma Noah Olivia Liam Mia Elias Hannah
    Jonas Lea Felix Clara Paul Marie Leon Anna Ben Lena Finn Camille Hugo Chloe Louis
    Manon Jules Ines Arthur Lucia Mateo Sofia Diego Valentina Pablo Carmen Javier Elena
    Joao Beatriz Rafael Mariana Tiago Larissa Bruno Aiko Haruto Yuki Sora Mei Wei Li Jun
    Min Seo Ji Priya Arjun Ananya Rohan Divya Vikram Amara Chidi Ngozi Kwame Zainab Omar
    Layla Yusuf Fatima Karim Nadia Ivan Olga Dmitri Katya Piotr Agnieszka Jan Eva Tomas
    Petra Mikko Aino Lars Ingrid Sven Astrid Niamh Cian Siobhan Oisin Kai Nora Theo Iris
    Ruth Sam Alex Robin Jordan Casey
    """
)

LAST_NAMES = _words(
    """
    Lovelace Hopper Turing Torvalds Hamilton Thompson Liskov Ritchie Allen Dijkstra
    Perlman Knuth Lamarr Berners Johnson McCarthy Keller Rossum Muller Schmidt Schneider
    Fischer Weber Meyer Wagner Becker Hoffmann Martin Bernard Dubois Thomas Robert
    Richard Petit Durand Leroy Moreau Garcia Fernandez Lopez Martinez Sanchez Perez
    Gomez Diaz Silva Santos Oliveira Souza Costa Pereira Almeida Ferreira Tanaka Suzuki
    Sato Watanabe Ito Chen Wang Zhang Liu Kim Lee Park Choi Sharma Patel Gupta Singh
    Iyer Okafor Adeyemi Mensah Haddad Khan Rahman Hassan Ivanov Petrov Kowalski Nowak
    Novak Horvat Virtanen Nieminen Hansen Johansson Nilsson Larsen Murphy Kelly Byrne
    Walsh Smith Jones Brown Taylor Wilson Evans Clarke Wright Green Baker Hughes Reyes
    Cruz
    """
)

EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.org", "example.net", "mail.example.com")

# {topic} is a tag label; bios without it belong to people who never say what they do.
BIOS: tuple[str, ...] = (
    "Writing about {topic} and whatever else breaks this week.",
    "Software engineer. Mostly {topic}, sometimes coffee.",
    "I build things with {topic} and write down what I learn.",
    "Staff engineer by day, {topic} tinkerer by night.",
    "Teaching {topic} to anyone who will listen.",
    "Maintainer of a few small open source projects. Into {topic}.",
    "Recovering consultant. Notes on {topic} and team work.",
    "Curious about {topic}, distributed systems and good documentation.",
    "Data person. {topic}, plots and the occasional rant.",
    "Designer who codes. Thinking about {topic} lately.",
    "Hobbyist. {topic} on weekends.",
    "Reader, runner, occasional writer.",
    "Here for the long-form posts.",
    "Opinions are my own and usually about {topic}.",
    "PhD student. Papers, {topic} and too many browser tabs.",
    "Engineering manager. Writing about {topic} and people.",
)

DEMO_PASSWORD = "demo-password"
