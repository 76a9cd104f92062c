"""The API's JSON parser: DRF's, with a body nested too deeply answered as a 400.

`json` recurses once per nesting level, so a body like `[[[[...]]]]` 100,000 deep raises
RecursionError, which DRF's parser does not catch (it turns only ValueError into a parse
error): the request ended as a 500. Here it is the same `parse_error` as any other body
that is not JSON the API can read.
"""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
