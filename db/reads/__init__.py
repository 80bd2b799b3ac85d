"""Every read, as SQL: what each entity's fields are in SQL (fields.py), who may see which
content (access.py), what the viewer's habits and affinities are (affinity.py), the lists
and lookups reads start from (sources.py), and the one builder that turns a selection into
one statement (compile.py). Nothing here knows GraphQL: a selection names entities,
fields and output keys (shape.py)."""
