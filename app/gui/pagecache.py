"""A small least-recently-used cache of fixed-size pages of rows.

The windowed history model keeps only the pages the operator looked at last:
memory stays bounded however far a million-row table is scrolled.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class PageCache(Generic[T]):
    """Pages of ``page_size`` rows, at most ``max_pages`` of them, LRU-evicted.

    Row ``r`` lives in page ``r // page_size`` at position ``r % page_size``.
    """

    def __init__(self, page_size: int, max_pages: int) -> None:
        if page_size < 1 or max_pages < 1:
            raise ValueError("page_size and max_pages must be at least 1")
        self.page_size = page_size
        self.max_pages = max_pages
        self._pages: OrderedDict[int, Sequence[T]] = OrderedDict()

    def page_of(self, row: int) -> int:
        return row // self.page_size

    def get(self, row: int) -> T | None:
        """The row's item if its page is cached (marks the page recently used)."""
        page = self.page_of(row)
        items = self._pages.get(page)
        if items is None:
            return None
        self._pages.move_to_end(page)
        position = row - page * self.page_size
        return items[position] if position < len(items) else None

    def has_page(self, page: int) -> bool:
        return page in self._pages

    def put(self, page: int, items: Sequence[T]) -> list[int]:
        """Store a page; returns the pages evicted to stay within ``max_pages``."""
        self._pages[page] = items
        self._pages.move_to_end(page)
        evicted: list[int] = []
        while len(self._pages) > self.max_pages:
            oldest, _ = self._pages.popitem(last=False)
            evicted.append(oldest)
        return evicted

    def pages(self) -> list[int]:
        """Cached page numbers, least recently used first."""
        return list(self._pages)

    def clear(self) -> None:
        self._pages.clear()

    def __len__(self) -> int:
        return len(self._pages)
