"""GraphQL over HTTP and WebSocket at /graphql, on strawberry's ASGI view."""

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse

from db.session import Database
from gateway.errors import error_codes
from gateway.explorer import DEFAULT_QUERY, explorer_html
from gateway.request_id import request_id_of
from resolvers.context import Context, create_context
from resolvers.cursors import CursorCodec
from resolvers.viewer import Viewer

RETRY_AFTER_SECONDS = 5


class GraphQLView(GraphQL[Context, None]):
    def __init__(
        self,
        schema: Any,
        *,
        database: Database,
        cursors: CursorCodec,
        max_page_size: int,
        explorer: bool,
    ) -> None:
        super().__init__(schema, graphql_ide="graphiql" if explorer else None)
        self.database = database
        self.cursors = cursors
        self.max_page_size = max_page_size

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        return create_context(
            db=self.database,
            viewer=Viewer.anonymous(),
            cursors=self.cursors,
            max_page_size=self.max_page_size,
            request_id=request_id_of(request.scope),
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(explorer_html(endpoint=request.url.path, default_query=DEFAULT_QUERY))

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if "SERVICE_UNAVAILABLE" in error_codes(response_data):
            # Load balancers and clients retry a 503; a 200 would hide the outage.
            response.status_code = 503
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
