"""Render the PDFs of a batch of issued invoices, optionally in worker processes.

Rendering is pure (an `InvoiceDocument` in, bytes out, no database), so a batch that issues
many invoices (closing a month: `generate_invoices --finalize`, the demo, the benchmark) can
hand the documents to a process pool and keep issuing the next chunk meanwhile. Only plain
data crosses the process boundary; the parent stores the bytes and updates the rows, so the
workers never touch Django's database connections. The workers are started from a fresh
fork server (not forked from this process with its open connections and threads) that has
already imported the renderer and its fonts.

With `processes=0` everything is rendered inline, one document at a time, in this process.
A failed rendering is logged and left for `invoice_pdfs_render_missing` (the cycle's
catch-up), exactly like the one-invoice path.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from billing.document import InvoiceDocument
from billing.models import Invoice, InvoiceEmail
from billing.pdf import render_invoice_pdf
from billing.pdf.fonts import register_fonts

logger = logging.getLogger(__name__)

_PRELOAD = ["billing.pdf.render"]


def default_pdf_processes() -> int:
    """Processes worth starting on this machine: its CPUs, none on a single CPU."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return cpus if cpus > 1 else 0


def _render_inline(doc: InvoiceDocument) -> bytes | BaseException:
    try:
        return render_invoice_pdf(doc)
    except Exception as exc:  # a broken PDF must not stop the batch
        return exc


@dataclass
class _Job:
    invoice: Invoice
    doc: InvoiceDocument
    delivery: InvoiceEmail | None
    result: Future | bytes | BaseException


class PdfBatch:
    """Collects issued invoices, renders their PDFs and hands them to `store(done, now)` (which
    saves the bytes and dispatches the emails) in submission order.

    Use as a context manager; `flush()` waits for everything submitted so far.
    """

    def __init__(
        self,
        *,
        now: dt.datetime,
        processes: int = 0,
        store: Callable[
            [list[tuple[Invoice, bytes | None, InvoiceEmail | None]], dt.datetime], None
        ],
    ) -> None:
        self.now = now
        self.store = store
        self._jobs: list[_Job] = []
        self._executor: ProcessPoolExecutor | None = None
        if processes > 0:
            try:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(_PRELOAD)
                # The workers run only `billing.pdf` (no Django): the function and the
                # initializer are pickled by reference to that package.
                self._executor = ProcessPoolExecutor(
                    max_workers=processes, mp_context=context, initializer=register_fonts
                )
            except (OSError, ValueError, ImportError) as exc:  # no fork server / semaphores
                logger.warning("no PDF worker processes (%s); rendering inline", exc)

    def __enter__(self) -> PdfBatch:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=exc_type is not None)

    def submit(self, invoice: Invoice, doc: InvoiceDocument, delivery: InvoiceEmail | None) -> None:
        result: Future | bytes | BaseException
        if self._executor is None:
            result = _render_inline(doc)
        else:
            try:
                result = self._executor.submit(render_invoice_pdf, doc)
            except (BrokenProcessPool, AssertionError, OSError):
                # A worker died, or processes cannot be started here (a daemonic process,
                # such as a multiprocessing pool worker, may not have children).
                self._give_up_pool()
                result = _render_inline(doc)
        self._jobs.append(_Job(invoice, doc, delivery, result))

    def _give_up_pool(self) -> None:
        """The pool is unusable (a worker killed, out of memory): render the rest inline."""
        if self._executor is not None:
            logger.warning("PDF worker processes failed; rendering in this process instead")
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def flush(self) -> None:
        """Wait for every submitted PDF, then store them (one call for the lot)."""
        jobs, self._jobs = self._jobs, []
        done: list[tuple[Invoice, bytes | None, InvoiceEmail | None]] = []
        for job in jobs:
            data = job.result
            if isinstance(data, Future):
                try:
                    data = data.result()
                except BrokenProcessPool:
                    self._give_up_pool()
                    data = _render_inline(job.doc)
                except Exception as exc:
                    data = exc
            if isinstance(data, BaseException):
                logger.error(
                    "PDF rendering failed for invoice %s (%s: %s); will retry",
                    job.invoice.pk,
                    type(data).__name__,
                    data,
                )
                data = None
            done.append((job.invoice, data, job.delivery))
        if done:
            self.store(done, self.now)
