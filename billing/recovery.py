"""What a killed worker left undone, recovered within minutes: document PDFs and emails.

A worker killed after an issuing committed, before it stored the PDFs and dispatched the
emails, leaves invoices without a PDF and deliveries `queued` with no task message; one
killed mid-send leaves a delivery claimed (`sending`) forever. Beat runs
`documents_recover_all_task` every 3 minutes (billing/schedule.py), one
`documents_recover_task` per reseller, which calls `documents_recover`:

Every age is measured with the wall clock against stamps the rows got from the wall clock
(`documents_recover_task` passes its own `timezone.now()`, not beat's fan-out time), never
against a batch's logical `now` (the cycle's fan-out time, possibly minutes before its rows
commit):
- the PDF of an issued invoice still without one whose row was last written
  (`Invoice.updated_at`) more than `PDF_MISSING_AFTER` ago is rendered and stored. The row
  is the judge: a batch still storing its chunk's PDFs and the sweep may both render one,
  the first stored wins and the other deletes its file (`invoice_pdfs_save`). Credit notes
  likewise (`created_at`);
- emails (invoices, credit notes, credit-limit notices) through `billing.outbox`: a claim
  older than the send's own deadline plus a margin (`STALE_CLAIM_AFTER`, 5 minutes) is dead
  and sent again; a delivery still `queued` `REDISPATCH_AFTER` (5 minutes) after its last
  task message (`dispatched_at`) gets another, the wait doubling at each one. Exactly once
  still holds: every send is claimed under the row lock.

So a kill is repaired 5 to 8 minutes later instead of at the next hourly cycle. The hourly
cycle (`invoice_cycle_run`) ends with the same repair (`hourly=True`: every PDF missing,
its own fresh ones included), measured from its `now`, which is never after the wall clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from accounts.models import Reseller
from billing.credit_notes.delivery import credit_notes_catch_up
from billing.invoicing.delivery import invoice_emails_redispatch, invoice_pdfs_render_missing
from billing.traffic_policy.notice import credit_limit_emails_redispatch

#: A document issued this long ago without a PDF: the worker that should store it is gone.
PDF_MISSING_AFTER = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class Recovered:
    pdfs: list[int]  # invoice ids whose PDF was rendered
    invoice_emails: list[int]  # delivery ids dispatched again
    credit_note_emails: list[int]
    credit_limit_emails: list[int]

    def as_dict(self) -> dict[str, int]:
        return {name: len(ids) for name, ids in self.__dict__.items()}


def documents_recover(*, reseller: Reseller, now: dt.datetime, hourly: bool = False) -> Recovered:
    """Render the reseller's missing PDFs and dispatch its stuck emails again (module text).
    `now`: the wall clock. `hourly`: the cycle's pass (every PDF missing, however recent)."""
    issued_before = None if hourly else now - PDF_MISSING_AFTER
    return Recovered(
        pdfs=invoice_pdfs_render_missing(reseller=reseller, now=now, issued_before=issued_before),
        invoice_emails=invoice_emails_redispatch(reseller=reseller, now=now),
        credit_note_emails=credit_notes_catch_up(
            reseller=reseller, now=now, created_before=issued_before
        ),
        credit_limit_emails=credit_limit_emails_redispatch(reseller=reseller, now=now),
    )
