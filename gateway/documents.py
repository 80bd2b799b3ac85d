"""Parsed and validated documents, remembered by their text.

Parsing and validating cost more than many of the queries they guard; a client asks
the same few documents again and again, so each is parsed (token limit included) and
validated once, then served from a bounded least-recently-used cache.

Not strawberry's ParserCache and ValidationCache: those are bounded too, but live
inside strawberry's operation, where the HTTP view cannot reach them before it
charges the rate limit, and they bound entries only, not the memory large ones hold.
"""

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    Source,
    TokenKind,
    parse,
    specified_rules,
    validate,
)
from graphql.language import Lexer
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from gateway.errors import QueryTooComplex
from gateway.text_inputs import TextLiteralsRule

# A parsed document keeps every token and node: about 100 bytes a character of its
# text. Bounding the characters cached, not just the entries, keeps a flood of large
# distinct documents to about 50 MB; everyday documents are far smaller than the share.
MAX_CACHED_CHARACTERS = 500_000


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    """A document that parsed (`document` set) or did not (`errors` say why); a parsed
    one may still carry validation errors."""

    document: DocumentNode | None
    errors: tuple[GraphQLError, ...] = ()
    fragments: dict[str, FragmentDefinitionNode] = field(default_factory=dict)
    # Measured sizes by (operation name, variables): the view and the schema extension
    # both ask for every HTTP operation, and clients repeat the same variables.
    sizes: dict[tuple[str | None, bytes], Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.document is not None and not self.errors

    def operation(self, name: str | None) -> OperationDefinitionNode | None:
        """The operation that runs: the one named, or (as strawberry picks) the first."""
        if self.document is None:
            return None
        for definition in self.document.definitions:
            if isinstance(definition, OperationDefinitionNode) and (
                name is None or (definition.name is not None and definition.name.value == name)
            ):
                return definition
        return None


def count_tokens(query: str) -> int:
    """Lexical tokens of a document that went over the token limit, to say by how much.
    Only ever run on text already under the length limit."""
    lexer = Lexer(Source(query))
    count = 0
    try:
        while lexer.advance().kind is not TokenKind.EOF:
            count += 1
    except GraphQLError:
        pass  # a syntax error later on; the tokens so far already make the point
    return count


class DocumentCache:
    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        max_tokens: int,
        introspection: bool = True,
        maxsize: int = 500,
    ) -> None:
        self.schema = schema
        self.max_tokens = max_tokens
        self.maxsize = maxsize
        rules: list[type[ASTValidationRule]] = [
            *specified_rules,
            MaybeNullValidationRule,
            OneOfInputValidationRule,
            TextLiteralsRule,
        ]
        if not introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        self.rules: Sequence[type[ASTValidationRule]] = tuple(rules)
        # Without introspection, "Did you mean ...?" would leak the field names it hides.
        self.hide_suggestions = not introspection
        self._entries: OrderedDict[str, PreparedDocument] = OrderedDict()
        self._characters = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, query: str) -> PreparedDocument:
        entry = self._entries.get(query)
        if entry is not None:
            self._entries.move_to_end(query)
            self.hits += 1
            return entry
        self.misses += 1
        entry = self._prepare(query)
        self._entries[query] = entry
        self._characters += len(query)
        while len(self._entries) > 1 and (
            len(self._entries) > self.maxsize or self._characters > MAX_CACHED_CHARACTERS
        ):
            dropped, _ = self._entries.popitem(last=False)
            self._characters -= len(dropped)
        return entry

    def _prepare(self, query: str) -> PreparedDocument:
        try:
            document = parse(query, max_tokens=self.max_tokens)
        except GraphQLError as syntax_error:
            refusal: GraphQLError = syntax_error
            # Parsing stops at the limit; lexing on says by how much (and tells a
            # document cut off by the limit from one with a plain syntax error).
            tokens = count_tokens(query)
            if tokens > self.max_tokens:
                refusal = QueryTooComplex(
                    f"query of {tokens:,} tokens exceeds the limit of {self.max_tokens:,}",
                    limit="tokens",
                    value=tokens,
                    maximum=self.max_tokens,
                )
            return PreparedDocument(document=None, errors=(refusal,))
        errors = validate(self.schema, document, self.rules, hide_suggestions=self.hide_suggestions)
        fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        return PreparedDocument(document=document, errors=tuple(errors), fragments=fragments)
