"""Search on PostgreSQL, typo phase and name tiers (catalog.search_postgres).

- `catalog_searchname`: every distinct lower-cased document name (SearchDocument.key),
  with a trigram GiST index (on a table this small the planner passes over a GIN one
  and computes similarity() for every row). A misspelt name is compared against these
  distinct names (2,200 for the 110,000 documents of bench/search.py, whose 100,000
  features share 500 names) instead of trigram-rechecking every document sharing
  trigrams with it; the matching documents are then read by key. Like the word
  lexicon (catalog.SearchTerm) it is only a candidate generator and is never pruned:
  a name no document holds any more matches nothing. It is written with raw SQL by
  catalog.search_index and has no model (nothing reads it through the ORM).
- `searchdoc_key_pattern`: a btree on `key` (text_pattern_ops) for those reads by key.

PostgreSQL only, like the indexes of 0002 (SQLite searches the registry directly).
"""

from django.db import migrations

FORWARD = [
    "CREATE TABLE IF NOT EXISTS catalog_searchname (key text PRIMARY KEY)",
    "CREATE INDEX IF NOT EXISTS searchname_key_trgm ON catalog_searchname USING gist (key gist_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS searchdoc_key_pattern ON catalog_searchdocument (key text_pattern_ops)",
    "INSERT INTO catalog_searchname (key) SELECT DISTINCT key FROM catalog_searchdocument ON CONFLICT (key) DO NOTHING",
]
BACKWARD = [
    "DROP INDEX IF EXISTS searchdoc_key_pattern",
    "DROP TABLE IF EXISTS catalog_searchname",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in FORWARD:
        schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in BACKWARD:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0002_search_index_and_statistics"),
    ]

    operations = [migrations.RunPython(forward, backward)]
