"""The speed-ups quality.py takes through Great Expectations' internals, all here, applied only
on the GX version they were checked against.

Validation (`applied`, around GX's run of a suite):
  - `_planning_memoised`: three of GX's pure planning steps (`Expectation.configuration`,
    `ExpectationConfiguration.to_domain_obj`, `IDDict.to_id`) worked out once, not thousands of
    times;
  - `_domains_memoised`: each metric domain's rows selected once per validation, cut to the
    domain's columns (`PandasExecutionEngine.get_domain_records` and `get_compute_domain`).
  Those five GX methods are replaced only inside the block, and put back when it ends, also when
  it fails.
Data Docs (`page_renderer`, `shown_result`): GX's page renderer and view made once per process,
and a result shown with only its expectation results' `result` dicts replaced (no deep copy).

Each relies on what GX does in `CHECKED_GX_VERSION` (which methods it calls, with what, and that
it does not change what it is given); `tests/unit/test_quality_speed_equivalence.py` and
`tests/unit/test_data_docs_equivalence.py` show that validate's results and the pages are the same
with and without them. With any other GX installed none is used: validation and pages are GX's
own (slower, same results), and the first use says so once in the log. Upgrading GX: run those
tests with the new version, then set CHECKED_GX_VERSION to it.
"""
from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from functools import lru_cache

log = logging.getLogger(__name__)

CHECKED_GX_VERSION = "1.24.1"  # great_expectations.__version__ the speed-ups were checked against

_WARN_LOCK = threading.Lock()
_warned = False  # whether this process has said that the speed-ups are off


def installed_gx_version() -> str:
    """great_expectations.__version__ (read each time: the check costs nothing once GX is imported)."""
    import great_expectations

    return great_expectations.__version__


def enabled() -> bool:
    """Whether the installed GX is the version the speed-ups were checked against; when it is not,
    says so in the log once per process."""
    global _warned
    installed = installed_gx_version()
    if installed == CHECKED_GX_VERSION:
        return True
    with _WARN_LOCK:
        if not _warned:
            _warned = True
            log.warning("great_expectations %s is installed, but the validation speed-ups of %s were checked "
                        "against %s only: they are off, and returns are validated (and Data Docs pages rendered) "
                        "by GX's own code, slower with the same results. Once tests/unit/"
                        "test_quality_speed_equivalence.py passes on %s, set CHECKED_GX_VERSION to it.",
                        installed, __name__, CHECKED_GX_VERSION, installed)
    return False


@contextmanager
def applied():
    """GX validates faster within the block when the installed version is CHECKED_GX_VERSION
    (GX's own methods back when it ends, also on error); with any other version, GX as it is.
    Yields whether the speed-ups are on."""
    if not enabled():
        yield False
        return
    with _planning_memoised(), _domains_memoised():
        yield True


# --------------------------------------------------------------------------- validation


_DOMAIN_LOCK = threading.Lock()
# What GX's pandas `get_domain_records` does with a domain's blank rows: (domain, ignore_row_if)
# -> how `DataFrame.dropna` drops them, or None to keep them.
_BLANK_ROWS = {("column_pair", "both_values_are_missing"): "all", ("column_pair", "either_value_is_missing"): "any",
               ("column_pair", "neither"): None, ("column_list", "all_values_are_missing"): "all",
               ("column_list", "any_value_is_missing"): "any", ("column_list", "never"): None}


def _domain_columns(domain_kwargs: Mapping) -> tuple[str, ...]:
    """The columns a metric domain names (none for a table domain)."""
    named = [domain_kwargs.get(k) for k in ("column", "column_A", "column_B")] + list(domain_kwargs.get("column_list") or [])
    return tuple(dict.fromkeys(c for c in named if isinstance(c, str)))


def _domain_key(domain_kwargs: Mapping) -> tuple | None:
    """A key for domain kwargs by their contents, whatever their order (GX builds them in more
    than one order), or None when they hold anything but plain values."""
    if not all(type(name) is str for name in domain_kwargs):
        return None
    return _plain_key(dict(sorted(domain_kwargs.items())))


def _blank_rows(domain_kwargs: Mapping) -> tuple[bool, str | None]:
    """Whether GX's `get_domain_records` (1.24.1) would do no more with these kwargs than apply
    their row condition and then drop blank rows, and if so how it drops them (None: it keeps
    them all). As it reads them: a column first, then a pair with ignore_row_if, then a column
    list with ignore_row_if; an ignore_row_if it does not know is GX's to reject."""
    if "column" in domain_kwargs:
        return True, None
    if "column_A" in domain_kwargs and "column_B" in domain_kwargs and "ignore_row_if" in domain_kwargs:
        found = ("column_pair", domain_kwargs["ignore_row_if"])
    elif "column_list" in domain_kwargs and "ignore_row_if" in domain_kwargs:
        found = ("column_list", domain_kwargs["ignore_row_if"])
    else:
        return True, None
    return (True, _BLANK_ROWS[found]) if found in _BLANK_ROWS else (False, None)


@contextmanager
def _domains_memoised():
    """Within the block, GX gets each metric domain's rows once, narrowed to the domain's columns.

    Checked against great-expectations 1.24.1. Each metric of each expectation asks the pandas
    engine's `get_domain_records` for its domain's rows: GX runs a row condition's
    `DataFrame.query` again, and drops a column pair's blank rows (a copy of the whole frame)
    again, for each of an expectation's four or so metrics; each metric then filters that whole
    frame, every column, though it reads only the domain's columns and the index.
    Here GX selects the rows of a row condition once per block (its own `get_domain_records`,
    given the kwargs without the domain's columns); a domain's rows are those, cut to the
    columns the domain names (`column`, `column_A`/`column_B`, `column_list`), less the blank
    rows GX would drop (`_blank_rows`: the same `dropna` on those columns, which keeps the same
    rows whether the other columns are there or not); a table domain (no column named) gets
    them whole. Each is kept while the block runs. A column metric that asks again with the
    compute kwargs `get_compute_domain` split its column off from (the very dict GX handed
    back: known by identity) gets that column too.
    Cutting columns is right for what validate asks of GX: an unnamed index, no
    `unexpected_index_column_names` and no unexpected rows (which would read other columns).
    GX's metric functions select from the frame they are given and never change it, so one
    frame serves several metrics. Only the thread that opened the block uses the memo; one
    thread at a time opens it. GX's methods are put back, and the memo dropped, when it ends.
    """
    from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine

    gx_records = PandasExecutionEngine.__dict__["get_domain_records"]
    gx_compute_domain = PandasExecutionEngine.__dict__["get_compute_domain"]
    owner = threading.get_ident()
    memo: dict[tuple, tuple] = {}
    split_off: dict[int, tuple[dict, tuple[str, ...]]] = {}

    def kept(engine, key, make):
        found = memo.get((id(engine), key))
        if found is None:
            found = memo[(id(engine), key)] = (engine, make())  # the engine kept: its id is not reused
        return found[1]

    def domain_rows(engine, domain_kwargs, columns):
        known, how = _blank_rows(domain_kwargs)
        if not known:
            return gx_records(engine, domain_kwargs)
        conditioned = {k: v for k, v in domain_kwargs.items()
                       if k not in ("column", "column_A", "column_B", "column_list", "ignore_row_if")}
        data = kept(engine, _domain_key(conditioned), lambda: gx_records(engine, conditioned))
        if not columns or not all(c in data.columns for c in columns):
            return gx_records(engine, domain_kwargs)  # GX's own rows, or its own error
        data = data[list(columns)]
        return data if how is None else data.dropna(axis=0, how=how, subset=list(columns))

    def get_domain_records(self, domain_kwargs):
        key = _domain_key(domain_kwargs) if threading.get_ident() == owner else None
        if key is None:
            return gx_records(self, domain_kwargs)
        columns = _domain_columns(domain_kwargs)
        if not columns:
            split = split_off.get(id(domain_kwargs))
            columns = split[1] if split is not None and split[0] is domain_kwargs else ()
        if not columns:
            return kept(self, key, lambda: gx_records(self, domain_kwargs))
        return kept(self, (key, columns), lambda: domain_rows(self, domain_kwargs, columns))

    def get_compute_domain(self, domain_kwargs, domain_type, accessor_keys=None):
        data, compute, accessor = gx_compute_domain(self, domain_kwargs, domain_type, accessor_keys)
        if threading.get_ident() == owner and _domain_columns(accessor):
            split_off[id(compute)] = (compute, _domain_columns(accessor))
        return data, compute, accessor

    with _DOMAIN_LOCK:
        PandasExecutionEngine.get_domain_records = get_domain_records
        PandasExecutionEngine.get_compute_domain = get_compute_domain
        try:
            yield
        finally:
            PandasExecutionEngine.get_domain_records = gx_records
            PandasExecutionEngine.get_compute_domain = gx_compute_domain


_MEMO_LOCK = threading.Lock()


@contextmanager
def _planning_memoised():
    """Within the block, GX works out each of three pure results once instead of many times.

    Checked against great-expectations 1.24.1. Planning a suite's validation (which metrics each
    expectation needs, and their ids) costs GX more than checking the rows of a return. It:
    - rebuilds `Expectation.configuration` (a pydantic dict() of every field and a regex over
      the class name) each time it is read: about ten times per expectation object;
    - rebuilds an expectation from its `ExpectationConfiguration` (`to_domain_obj`, a pydantic
      validation) for each metric it asks about;
    - turns each metric's arguments to JSON and hashes them (`IDDict.to_id`) for every metric
      id and every set or dict lookup of one: thousands of times per suite.
    GX does not change an expectation or a configuration once it has read it while validating,
    so the first two are the same each time for the same object; the memo keeps each object it
    answered for, so no id is reused while the block runs. `to_id` depends only on the arguments'
    contents: its memo is keyed by those contents with their types (`_plain_key`), and anything
    but plain values (strings, numbers, None, lists and dicts of them) goes to GX's own code.
    Only the thread that opened the block uses the memos; one thread at a time opens it. GX's
    own methods are put back, and the memos dropped, when the block ends.
    """
    from great_expectations.core.id_dict import IDDict
    from great_expectations.expectations.expectation import Expectation
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    gx_configuration = Expectation.__dict__["configuration"]
    gx_to_domain_obj = ExpectationConfiguration.__dict__["to_domain_obj"]
    gx_to_id = IDDict.__dict__["to_id"]
    owner = threading.get_ident()
    by_object: dict[tuple[str, int], tuple] = {}
    ids: dict[tuple, object] = {}

    def once_per_object(name: str, build: Callable):
        def memoised(self):
            if threading.get_ident() != owner:
                return build(self)
            found = by_object.get((name, id(self)))
            if found is None:
                found = by_object[(name, id(self))] = (self, build(self))
            return found[1]
        return memoised

    def to_id(self, id_keys=None, id_ignore_keys=None):
        key = None
        if id_keys is None and id_ignore_keys is None and threading.get_ident() == owner:
            key = _plain_key(self)
        if key is None:
            return gx_to_id(self, id_keys, id_ignore_keys)
        found = ids.get(key)
        if found is None:
            found = ids[key] = gx_to_id(self)
        return found

    with _MEMO_LOCK:
        Expectation.configuration = property(once_per_object("configuration", gx_configuration.fget),
                                             doc=gx_configuration.__doc__)
        ExpectationConfiguration.to_domain_obj = once_per_object("to_domain_obj", gx_to_domain_obj)
        IDDict.to_id = to_id
        try:
            yield
        finally:
            Expectation.configuration = gx_configuration
            ExpectationConfiguration.to_domain_obj = gx_to_domain_obj
            IDDict.to_id = gx_to_id


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain_key(value) -> tuple | None:
    """A hashable key that tells apart any two different plain values, types included (1, 1.0
    and True differ), or None when `value` holds anything else. The dict's own type is in it too
    (an IDDict subclass may leave keys out of its id)."""
    kind = type(value)
    if kind in _SCALARS:
        return (kind, value)
    if kind is list or kind is tuple:
        parts = []
        for item in value:
            part = _plain_key(item)
            if part is None:
                return None
            parts.append(part)
        return (kind, tuple(parts))
    if isinstance(value, dict) and kind.__eq__ is dict.__eq__:
        parts = []
        for name, item in value.items():
            if type(name) is not str:
                return None
            item_kind = type(item)
            part = (item_kind, item) if item_kind in _SCALARS else _plain_key(item)
            if part is None:
                return None
            parts.append((name, part))
        return (kind, tuple(parts))
    return None


# --------------------------------------------------------------------------- Data Docs


def page_renderer() -> tuple:
    """GX's validation-results page renderer and its Jinja view.

    Checked version: one pair per process (the view's Jinja environment compiles its templates
    once; a new view per page spent most of each page's time compiling them; neither keeps
    anything of a page it rendered). Otherwise a new pair each time, as GX makes them."""
    if enabled():
        return _kept_page_renderer()
    return _new_page_renderer()


@lru_cache(maxsize=1)
def _kept_page_renderer() -> tuple:
    return _new_page_renderer()


def _new_page_renderer() -> tuple:
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    return ValidationResultsPageRenderer(), DefaultJinjaPageView()


def shown_result(gx_result, change: Callable):
    """A copy of a GX suite validation result with each expectation result's `result` dict
    replaced by `change(result)`, for a page; `gx_result` is left as it was.

    Checked version: only the expectation results are new objects, and the rest (such as the
    expectation configurations and the run's details) is shared with `gx_result`, which GX's
    page renderer only reads: no deep copy of thousands of found values and row indices per page.
    Otherwise a deep copy of the whole result."""
    if not enabled():
        shown = copy.deepcopy(gx_result)
        for er in shown.results:
            er.result = change(er.result)
        return shown
    shown = copy.copy(gx_result)
    shown.results = [copy.copy(er) for er in gx_result.results]
    for er in shown.results:
        er.result = change(er.result)
    return shown
