"""Every query constant parses, is one named operation, and validates against the fake
Stash's SDL (a strict subset of Stash v0.30.1's schema), with deprecated fields refused."""

from __future__ import annotations

from pathlib import Path

import graphql
import pytest
from graphql.language import FieldNode, OperationDefinitionNode, visit
from graphql.language.visitor import Visitor
from graphql.validation import NoDeprecatedCustomRule, specified_rules

import stash2plex_stash_source
from stash2plex_stash_source import queries

SDL = Path(stash2plex_stash_source.__file__).parent / "fake" / "schema.graphql"


@pytest.fixture(scope="module")
def schema() -> graphql.GraphQLSchema:
    built = graphql.build_schema(SDL.read_text(encoding="utf-8"))
    assert graphql.validate_schema(built) == []
    return built


def _fields(doc: graphql.DocumentNode) -> list[list[str]]:
    """Every selected field as its path from the operation root."""
    found: list[list[str]] = []

    class Collect(Visitor):
        def enter_field(self, node: FieldNode, _key, _parent, _path, ancestors) -> None:
            names = [a.name.value for a in ancestors if isinstance(a, FieldNode)]
            found.append([*names, node.name.value])

    visit(doc, Collect())
    return found


def test_all_lists_every_constant() -> None:
    upper = {
        n
        for n, v in vars(queries).items()
        if n.isupper() and not n.startswith("_") and isinstance(v, str)
    }
    # The scenes showing a related object: one document per kind, from one template.
    upper |= {f"SCENES_WITH_{kind.upper()}" for kind in queries.SCENES_WITH}
    assert upper == set(queries.ALL)
    assert set(queries.SCENES_WITH) == {"performers", "studios", "tags"}


@pytest.mark.parametrize("name", sorted(queries.ALL))
def test_validates_against_fake_schema(schema: graphql.GraphQLSchema, name: str) -> None:
    doc = graphql.parse(queries.ALL[name])
    errors = graphql.validate(schema, doc, [*specified_rules, NoDeprecatedCustomRule])
    assert errors == [], [e.message for e in errors]


@pytest.mark.parametrize("name", sorted(queries.ALL))
def test_single_named_query(name: str) -> None:
    doc = graphql.parse(queries.ALL[name])
    ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
    assert len(ops) == 1
    assert ops[0].operation == graphql.OperationType.QUERY  # the provider never mutates
    assert ops[0].name is not None and ops[0].name.value.startswith("Stash2Plex")


def test_operation_names_unique() -> None:
    names = [graphql.get_operation_ast(graphql.parse(q)).name.value for q in queries.ALL.values()]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("name", sorted(queries.ALL))
def test_never_selects_stream_urls(name: str) -> None:
    # paths.stream embeds Stash's API key; sceneStreams is expensive and also carries it.
    for path in _fields(graphql.parse(queries.ALL[name])):
        assert path[-2:] != ["paths", "stream"]
        assert "sceneStreams" not in path


def test_index_queries_select_the_same_scene_fields() -> None:
    # The build and the refresh feed the same row mapper: their selections must agree.
    def scene_fields(q: str) -> list[list[str]]:
        return [p for p in _fields(graphql.parse(q)) if p[:2] == ["findScenes", "scenes"]]

    assert scene_fields(queries.SCENE_PAGE) == scene_fields(queries.SCENES_UPDATED_SINCE)
    for scenes_with in queries.SCENES_WITH.values():
        assert scene_fields(queries.SCENE_PAGE) == scene_fields(scenes_with)


def test_paging_queries_sort_explicitly() -> None:
    # No sort means no ORDER BY in Stash: paging would be nondeterministic.
    assert 'sort: "id", direction: ASC' in queries.SCENE_PAGE
    assert 'sort: "id", direction: ASC' in queries.SCENE_IDS_PAGE
    assert 'sort: "updated_at", direction: ASC' in queries.SCENES_UPDATED_SINCE
    assert queries.RELATED_UPDATED_SINCE.count('sort: "updated_at", direction: ASC') == 3
    for scenes_with in queries.SCENES_WITH.values():
        assert 'sort: "id", direction: ASC' in scenes_with


def test_ids_page_selects_only_id() -> None:
    paths = _fields(graphql.parse(queries.SCENE_IDS_PAGE))
    assert paths == [["findScenes"], ["findScenes", "scenes"], ["findScenes", "scenes", "id"]]


@pytest.mark.parametrize("name", sorted(queries.ALL))
def test_inputs_only_through_variables(name: str) -> None:
    # Literal arguments are fine only for our own constants (sort, modifiers, hash type);
    # every value that comes from outside must be a variable.
    doc = graphql.parse(queries.ALL[name])
    allowed_literals = {"sort", "direction", "modifier", "type", "depth", "per_page"}
    literal_args: list[str] = []

    class Collect(Visitor):
        def enter_object_field(self, node, *_args) -> None:
            if not isinstance(node.value, graphql.VariableNode | graphql.ObjectValueNode):
                literal_args.append(node.name.value)

        def enter_argument(self, node, *_args) -> None:
            if not isinstance(node.value, graphql.VariableNode | graphql.ObjectValueNode):
                literal_args.append(node.name.value)

    visit(doc, Collect())
    assert set(literal_args) <= allowed_literals, literal_args
