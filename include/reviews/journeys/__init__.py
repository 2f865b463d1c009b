"""Case journeys: one row per case, following it from the notification to publication.

The business unit's question is "is every case on track, and what do I chase today?"; the
`timeliness` table answers it a stage at a time. A journey puts the stages of one case side by
side (notification, rapid review, the decision, the Panel's response, commissioning, delay,
completion, final report, publication), says where the case is now and what is due next, and
notes where its records contradict each other (`findings`).

- `model`: the stages, statuses and words, and the Journey a case becomes;
- `build`: journeys as of a day, from the case tables and that day's `timeliness` rows (the
  statutory stages' statuses are read from there, never judged again);
- `findings`: the consistency findings (config `journeys`);
- `store`: the `case_journeys` partition of a day, replaced whole (reruns are identical);
- `workbook`: the dated XLSX for the business unit (internal, never circulated).

No Airflow here; `statutory_timeliness.journeys` calls `store.run_journeys`.
"""
