"""Hardware tab: IBM Quantum account, backend and options, rerun of the HQNN's circuit, jobs, results.

Thin over :mod:`hqnn_desktop.hardware`: every network call and every run goes
through ``start_worker``; the tab only collects choices, asks before spending
QPU time, and shows simulation and backend side by side.
"""

from __future__ import annotations

import datetime
import functools
import threading

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..hardware.credentials import CHANNELS, Credentials, CredentialsError, CredentialStore, mask
from .confusion_plot import ConfusionPlot
from .workers import start_worker

TRISTATE = {"as the resilience level decides": None, "on": True, "off": False}
#: The runs list's columns, most telling first: the list is narrow beside the results.
RUN_COLUMNS = ("status", "created", "backend", "pack", "images", "jobs", "run")
_QISKIT_IMPORT = threading.Lock()


def qiskit_loaded_first(func):
    """Workers import qiskit on first use. Two threads importing it at once can see half-initialised
    modules (qiskit's modules import each other: "cannot import name 'Backend' from partially
    initialized module"), so the first import happens under one lock, whichever worker comes first."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        with _QISKIT_IMPORT:
            import qiskit_aer  # noqa: F401
            import qiskit_ibm_runtime.fake_provider  # noqa: F401
        return func(*args, **kwargs)

    return run


@qiskit_loaded_first
def account_backends(creds: Credentials | None):
    """Worker: log in and list the account's backends."""
    from ..hardware.service import test_connection

    return test_connection(creds)


@qiskit_loaded_first
def offline_backends() -> list[str]:
    """Worker: the noiseless simulator and every fake device (a device too small for the pack is refused
    with a message when the run starts)."""
    from ..hardware.rerun import fake_backend_names

    return ["aer_simulator", *fake_backend_names()]


@qiskit_loaded_first
def plan_hardware_run(pack, backend: str, options, paths: list[str] | None, folder: str | None,
                      stop: threading.Event):
    """Worker: images (Classify tab list or a labelled folder), local pass, transpilation, QPU estimate."""
    from ..core.datasets import scan_class_folders
    from ..hardware.rerun import backend_kind, plan_run
    from ..hardware.service import connect

    truth = None
    if folder:
        files = scan_class_folders(folder, pack.labels)
        paths, truth = [str(p) for p in files.paths], [int(t) for t in files.targets]
    service = connect() if backend_kind(backend) == "real" else None
    return plan_run(pack, paths or [], backend, truth, options, service, stop.is_set)


@qiskit_loaded_first
def fetch_run(run_id: str):
    """Worker: ask for the run's job states; the report when every job is done."""
    from ..hardware.jobs import JobStore
    from ..hardware.rerun import refresh_run, report_for

    record = refresh_run(JobStore(), run_id)
    return record, (report_for(record) if record.complete else None)


@qiskit_loaded_first
def cancel_hardware_run(run_id: str):
    """Worker: cancel the run's queued jobs."""
    from ..hardware.jobs import JobStore
    from ..hardware.rerun import cancel_run

    return cancel_run(JobStore(), run_id)


class HardwareTab(QWidget):
    """Rerun the pack's quantum layer on IBM Quantum, a calibrated fake device, or the simulator."""

    status = Signal(str)
    error = Signal(str, str)
    job_progress = Signal(int, int, str)

    def __init__(self, classify, parent=None) -> None:
        super().__init__(parent)
        self.classify = classify
        self.store = CredentialStore()
        self.report: dict | None = None
        self.plan = None
        self.confirm_box: QMessageBox | None = None
        self._stop = threading.Event()
        self._workers: list = []
        self._running = False
        self.job_progress.connect(self._on_job)

        layout = QVBoxLayout(self)
        controls = QWidget()
        top = QHBoxLayout(controls)
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self._account_box(), 1)
        top.addWidget(self._run_box(), 1)
        # in a scroll area, so the tab never forces the window taller than a laptop screen
        scroll = self.controls = QScrollArea()
        scroll.setWidget(controls)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        settings = QWidget()
        column = QVBoxLayout(settings)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(scroll, 1)
        run_row = self._run_row()
        column.addWidget(run_row)
        # runs beside their results, so the settings above fit whole (Run button included)
        # in a window 800 pixels high
        runs = QSplitter(Qt.Horizontal)
        runs.addWidget(self._jobs_box())
        runs.addWidget(self._results_box())
        runs.setStretchFactor(0, 2)
        runs.setStretchFactor(1, 3)
        split = QSplitter(Qt.Vertical)
        split.addWidget(settings)
        split.addWidget(runs)
        split.setCollapsible(0, False)
        split.setStretchFactor(1, 1)
        split.setSizes([controls.sizeHint().height() + run_row.sizeHint().height(), 300])
        layout.addWidget(split, 1)
        self._account_read = False
        self._set_backends([], offline=None)

    # ----------------------------------------------------------------- layout
    def _account_box(self) -> QGroupBox:
        box = QGroupBox("IBM Quantum account")
        form = QFormLayout(box)
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.Password)
        self.key_edit.setToolTip("Your IBM Quantum Platform API key; it is kept in the system keyring")
        self.instance_edit = QLineEdit()
        self.instance_edit.setPlaceholderText("crn:v1:bluemix:public:quantum-computing:… (empty: any)")
        self.channel_combo = QComboBox()
        self.channel_combo.addItems(CHANNELS)
        buttons = QHBoxLayout()
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save_credentials)
        self.forget_button = QPushButton("Forget")
        self.forget_button.clicked.connect(self.forget_credentials)
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self.test_connection)
        for b in (self.save_button, self.forget_button, self.test_button):
            buttons.addWidget(b)
        self.storage_label = QLabel()
        self.storage_label.setWordWrap(True)
        self.backend_table = QTableWidget(0, 4)
        self.backend_table.setHorizontalHeaderLabels(["backend", "qubits", "pending jobs", "status"])
        self.backend_table.horizontalHeader().setStretchLastSection(True)
        self.backend_table.setMaximumHeight(110)
        form.addRow("API key", self.key_edit)
        form.addRow("Instance (CRN)", self.instance_edit)
        form.addRow("Channel", self.channel_combo)
        form.addRow(buttons)
        form.addRow(self.storage_label)
        form.addRow(self.backend_table)
        return box

    def _run_box(self) -> QGroupBox:
        from ..hardware.options import DD_SEQUENCES, RunOptions

        defaults = RunOptions()
        box = QGroupBox("Run the quantum layer")
        grid = QGridLayout(box)
        self.backend_combo = QComboBox()
        self.backend_combo.setEditable(True)
        self.backend_combo.setToolTip("A device of your account (e.g. ibm_torino), a calibrated fake device "
                                      "(fake_*, offline) or the noiseless aer_simulator")
        self.shots = QSpinBox(minimum=1, maximum=1_000_000, value=defaults.shots)
        self.optimisation = QSpinBox(minimum=0, maximum=3, value=defaults.optimization_level)
        self.resilience = QComboBox()
        self.resilience.addItems(["0: none", "1: readout mitigation (TREX)", "2: + zero-noise extrapolation"])
        self.resilience.setCurrentIndex(defaults.resilience_level)
        self.dd = QCheckBox("Dynamical decoupling")
        self.dd.setChecked(defaults.dynamical_decoupling)
        self.dd_sequence = QComboBox()
        self.dd_sequence.addItems(DD_SEQUENCES)
        self.dd_sequence.setCurrentText(defaults.dd_sequence)
        self.twirl_gates = QComboBox()
        self.twirl_gates.addItems(TRISTATE)
        self.twirl_measure = QComboBox()
        self.twirl_measure.addItems(TRISTATE)
        self.batch = QSpinBox(minimum=1, maximum=10_000, value=defaults.batch_size)
        self.source = QComboBox()
        self.source.addItems(["Images in the Classify tab", "A labelled folder (one subfolder per class)"])
        self.folder_edit = QLineEdit()
        browse = QPushButton("Browse…")
        browse.setToolTip("Choosing a folder also switches Images to it")
        browse.clicked.connect(self._choose_folder)
        self.source.currentIndexChanged.connect(lambda index: self.folder_edit.setEnabled(index == 1))
        self.folder_edit.setEnabled(False)
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.start_run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.run_status = QLabel("")
        self.run_status.setWordWrap(True)
        rows = [("Backend", self.backend_combo), ("Shots", self.shots), ("Optimisation level", self.optimisation),
                ("Resilience", self.resilience), ("Images per job", self.batch),
                ("Gate twirling", self.twirl_gates), ("Measurement twirling", self.twirl_measure)]
        for i, (text, widget) in enumerate(rows):
            grid.addWidget(QLabel(text), i, 0)
            grid.addWidget(widget, i, 1, 1, 2)
        r = len(rows)
        grid.addWidget(self.dd, r, 0)
        grid.addWidget(self.dd_sequence, r, 1, 1, 2)
        grid.addWidget(QLabel("Images"), r + 1, 0)
        grid.addWidget(self.source, r + 1, 1, 1, 2)
        grid.addWidget(self.folder_edit, r + 2, 1)
        grid.addWidget(browse, r + 2, 2)
        return box

    def _run_row(self) -> QWidget:
        """Run, Cancel, the progress and what the last run said: under the settings, outside their
        scroll area, so that a small window never scrolls the Run button out of sight."""
        row = QWidget()
        layout = QGridLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.run_button, 0, 0)
        layout.addWidget(self.cancel_button, 0, 1)
        layout.addWidget(self.progress, 0, 2)
        layout.setColumnStretch(2, 1)
        layout.addWidget(self.run_status, 1, 0, 1, 3)
        return row

    def _jobs_box(self) -> QGroupBox:
        box = QGroupBox("Runs and their jobs (kept in your data folder)")
        layout = QVBoxLayout(box)
        self.jobs_table = QTableWidget(0, len(RUN_COLUMNS))
        self.jobs_table.setHorizontalHeaderLabels(list(RUN_COLUMNS))
        self.jobs_table.setSelectionBehavior(QTableWidget.SelectRows)
        self.jobs_table.setSelectionMode(QTableWidget.SingleSelection)
        self.jobs_table.horizontalHeader().setStretchLastSection(True)
        self.jobs_table.verticalHeader().hide()
        buttons = QHBoxLayout()
        for text, slot in (("Refresh list", self.refresh_jobs), ("Fetch results", self.fetch_selected),
                           ("Cancel jobs", self.cancel_selected)):
            b = QPushButton(text)
            b.clicked.connect(slot)
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.damaged_runs = QLabel()  # records that cannot be read: named, never silently left out
        self.damaged_runs.setWordWrap(True)
        self.damaged_runs.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.damaged_runs.hide()
        layout.addWidget(self.jobs_table)
        layout.addWidget(self.damaged_runs)
        layout.addLayout(buttons)
        return box

    def _results_box(self) -> QGroupBox:
        box = QGroupBox("Simulation and backend side by side")
        layout = QVBoxLayout(box)
        self.summary = QLabel("No results yet.")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        views = QTabWidget()
        plots = QWidget()
        row = QHBoxLayout(plots)
        self.sim_plot, self.hw_plot = ConfusionPlot(), ConfusionPlot()
        plots.setMinimumHeight(160)
        row.addWidget(self.sim_plot)
        row.addWidget(self.hw_plot)
        self.images_table = QTableWidget(0, 0)
        views.addTab(plots, "Confusion matrices")
        views.addTab(self.images_table, "Images and <Z> values")
        exports = QHBoxLayout()
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_csv_button.clicked.connect(lambda: self._export("csv"))
        self.export_json_button = QPushButton("Export JSON…")
        self.export_json_button.clicked.connect(lambda: self._export("json"))
        for b in (self.export_csv_button, self.export_json_button):
            b.setEnabled(False)
            exports.addWidget(b)
        exports.addStretch(1)
        layout.addWidget(self.summary)
        layout.addWidget(views, 1)
        layout.addLayout(exports)
        return box

    # ------------------------------------------------------------ credentials
    def showEvent(self, event) -> None:  # Qt API name
        """Read the keyring, list the devices and the recorded runs only when the tab is first shown:
        the keyring may ask to be unlocked, and importing qiskit at start-up would slow the window."""
        if not self._account_read:
            self._account_read = True
            self._show_saved()
            self._workers.append(start_worker(offline_backends,
                                              returned=lambda names: self._set_backends(None, names)))
            self.refresh_jobs()
        super().showEvent(event)

    def _show_saved(self) -> None:
        try:
            creds = self.store.load()
        except CredentialsError as exc:
            creds = None
            self.error.emit("The saved IBM Quantum credentials cannot be read.", str(exc))
        self.key_edit.clear()
        self.key_edit.setPlaceholderText(f"saved ({mask(creds.token)})" if creds else "paste your API key")
        if creds:
            self.instance_edit.setText(creds.instance)
            self.channel_combo.setCurrentText(creds.channel)
        state = "Saved in" if creds else "Nothing saved. A key would be kept in"
        self.storage_label.setText(f"{state} {self.store.where()}.")

    def save_credentials(self) -> None:
        """Save what the form holds; an empty key field keeps the saved key (instance and channel change)."""
        try:
            token = self.key_edit.text().strip()
            if not token:  # keep the saved key; only then do damaged saved credentials matter
                saved = self.store.load()
                token = saved.token if saved else ""
            self.store.save(Credentials(token, self.instance_edit.text().strip(), self.channel_combo.currentText()))
        except CredentialsError as exc:
            self.error.emit("The credentials were not saved.", str(exc))
            return
        self._show_saved()
        self.status.emit("IBM Quantum credentials saved.")

    def forget_credentials(self) -> None:
        try:
            had = self.store.load() is not None
        except CredentialsError:  # damaged or unreadable: there is something to remove
            had = True
        self.store.forget()
        self.instance_edit.clear()
        self.backend_table.setRowCount(0)
        self._show_saved()
        self.status.emit("IBM Quantum credentials removed." if had else "No IBM Quantum credentials were saved.")

    def _form_credentials(self) -> Credentials | None:
        """The form's credentials when a key is typed in, else None (the saved ones are used)."""
        token = self.key_edit.text().strip()
        if not token:
            return None
        return Credentials(token, self.instance_edit.text().strip(), self.channel_combo.currentText())

    def test_connection(self) -> None:
        try:
            creds = self._form_credentials()
        except CredentialsError as exc:
            self.error.emit("These credentials cannot be used.", str(exc))
            return
        self.test_button.setEnabled(False)
        self.storage_label.setText("Connecting to IBM Quantum…")
        self._workers.append(start_worker(account_backends, creds, returned=self._backends_listed,
                                          errored=self._connection_failed,
                                          finished=lambda: self.test_button.setEnabled(True)))

    def _backends_listed(self, rows) -> None:
        self.backend_table.setRowCount(len(rows))
        for i, b in enumerate(rows):
            state = ("operational" if b.operational else "not operational") + f" ({b.status})"
            for j, v in enumerate((b.name, b.num_qubits, "?" if b.pending_jobs is None else b.pending_jobs, state)):
                self.backend_table.setItem(i, j, QTableWidgetItem(str(v)))
        self.backend_table.resizeColumnsToContents()
        self._set_backends([b.name for b in rows if b.operational is not False], offline=None)
        self._show_saved()
        self.storage_label.setText(f"Connected: {len(rows)} backends. " + self.storage_label.text())

    def _connection_failed(self, exc: Exception) -> None:
        self._show_saved()  # where the key is kept stays said; the failure goes in the message box
        self.error.emit(f"The connection test failed: {exc}", "")

    def _set_backends(self, real: list[str] | None, offline: list[str] | None) -> None:
        """Fill the backend choice; ``None`` keeps the account's (or the offline) names already listed,
        whichever of the two background lists arrives first."""
        listed = [(self.backend_combo.itemText(i), self.backend_combo.itemData(i))
                  for i in range(self.backend_combo.count())]
        if real is None:
            real = [name for name, is_real in listed if is_real]
        if offline is None:
            offline = [name for name, is_real in listed if not is_real]
        current = self.backend_combo.currentText() or "fake_brisbane"
        self.backend_combo.clear()
        for name in real:
            self.backend_combo.addItem(name, True)
        for name in offline or ["aer_simulator", "fake_brisbane"]:
            if name not in real:
                self.backend_combo.addItem(name, False)
        self.backend_combo.setCurrentText(current)

    # -------------------------------------------------------------------- run
    def options(self):
        from ..hardware.options import RunOptions

        return RunOptions(shots=self.shots.value(), batch_size=self.batch.value(),
                          optimization_level=self.optimisation.value(),
                          resilience_level=self.resilience.currentIndex(), dynamical_decoupling=self.dd.isChecked(),
                          dd_sequence=self.dd_sequence.currentText(),
                          twirl_gates=TRISTATE[self.twirl_gates.currentText()],
                          twirl_measure=TRISTATE[self.twirl_measure.currentText()])

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Labelled folder (one subfolder per class)")
        if folder:
            self.folder_edit.setText(folder)
            self.source.setCurrentIndex(1)

    def busy(self) -> bool:
        return self._running

    def start_run(self) -> None:
        engine = self.classify.engine
        if engine is None or "hqnn" not in engine.pack.heads:
            self.error.emit("No pack with an HQNN is loaded yet.", "Wait for the pack to load, or choose another.")
            return
        folder = self.folder_edit.text().strip() if self.source.currentIndex() == 1 else None
        if folder == "":  # never fall back on the Classify images: that could spend QPU time on the wrong cells
            self.error.emit("Choose the labelled folder to run.", "A labelled folder is selected as the images "
                            "to run, but no folder is given; browse to one, or choose the Classify images.")
            return
        paths = None if folder else [r.path for r in self.classify.model.results if not r.error]
        if not folder and not paths:
            self.error.emit("There are no images to run.", "Classify some images first, or choose a labelled folder.")
            return
        self._stop.clear()
        self._set_running(True, "Preparing: backbone, bottleneck and simulation on this computer, transpilation…")
        self._workers.append(start_worker(plan_hardware_run, engine.pack, self.backend_combo.currentText().strip(),
                                          self.options(), paths, folder, self._stop, returned=self._planned,
                                          errored=self._failed))

    def _planned(self, plan) -> None:
        self.plan = plan
        if plan.kind != "real":
            self._submit()
            return
        self.confirm_box = QMessageBox(QMessageBox.Question, "Submit to IBM Quantum?",
                                       plan.summary() + "\n\nThis uses QPU time of your IBM Quantum account.",
                                       QMessageBox.Ok | QMessageBox.Cancel, self)
        self.confirm_box.button(QMessageBox.Ok).setText("Submit")
        self.confirm_box.setDefaultButton(QMessageBox.Cancel)
        self.confirm_box.finished.connect(self._confirmed)
        self.confirm_box.open()

    def _confirmed(self, result: int) -> None:
        if result == QMessageBox.Ok:
            self._submit()
        else:
            self.plan = None
            self._set_running(False, "Nothing was submitted.")

    def _submit(self) -> None:
        from ..hardware.rerun import execute

        plan = self.plan
        self.progress.setRange(0, plan.n_jobs)
        self.progress.setValue(0)
        self.run_status.setText(f"Running on {plan.backend_name}: {plan.summary()}")
        self._workers.append(start_worker(
            execute, plan, None, lambda job, k, n: self.job_progress.emit(k, n, job.job_id()), self._stop.is_set,
            returned=self._finished_run, errored=self._failed))

    def _on_job(self, k: int, n: int, job_id: str) -> None:
        self.progress.setValue(k)
        self.run_status.setText(f"Job {k} of {n} ({job_id}) submitted to {self.plan.backend_name if self.plan else ''}.")
        self.refresh_jobs()

    def _finished_run(self, report: dict) -> None:
        self._set_running(False, f"Done: {report['n_images']} images in {report['n_jobs']} job(s).")
        self.progress.setValue(1)  # complete, not the 0 % of a run that stopped
        self.refresh_jobs()
        self.show_report(report)

    def _failed(self, exc: Exception) -> None:
        from ..hardware.runner import Cancelled

        self.refresh_jobs()
        if isinstance(exc, Cancelled):
            self._set_running(False, str(exc))
            return
        self._set_running(False, f"The run stopped: {exc}")
        self.error.emit(f"The hardware run did not finish: {exc}", "")

    def cancel(self) -> None:
        """Stop between jobs (queued IBM jobs stay queued: cancel them from the runs list)."""
        self._stop.set()

    def _set_running(self, running: bool, text: str) -> None:
        self._running = running
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if running:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self.run_status.setText(text)
        self.status.emit(text)

    # ------------------------------------------------------------------- jobs
    def refresh_jobs(self) -> None:
        """Reload the run records from disk (no network)."""
        from ..hardware.jobs import JobStore

        runs, problems = JobStore().scan()
        self.damaged_runs.setText("\n".join(problems) + "\nThese files were left as they are; the runs above are "
                                  "not affected." if problems else "")
        self.damaged_runs.setVisible(bool(problems))
        self.jobs_table.setRowCount(len(runs))
        for i, r in enumerate(runs):
            when = datetime.datetime.fromtimestamp(r.created).strftime("%Y-%m-%d %H:%M")
            values = {"status": r.status, "created": when, "backend": r.backend, "pack": r.pack,
                      "images": r.n_images, "jobs": len(r.jobs), "run": r.run_id}
            tip = f"Run {r.run_id}: {r.n_images} images of {r.pack} on {r.backend} in {len(r.jobs)} job(s), {r.status}"
            for j, column in enumerate(RUN_COLUMNS):
                item = QTableWidgetItem(str(values[column]))
                item.setData(Qt.UserRole, r.run_id)
                item.setToolTip(tip)
                self.jobs_table.setItem(i, j, item)
        self.jobs_table.resizeColumnsToContents()

    def selected_run(self) -> str | None:
        row = self.jobs_table.currentRow()
        item = self.jobs_table.item(row, 0) if row >= 0 else None
        return item.data(Qt.UserRole) if item else None

    def _run_to_act_on(self) -> str | None:
        """The selected run, or None after saying how to select one (the buttons act on the selection)."""
        run_id = self.selected_run()
        if run_id is None:
            self.run_status.setText("Select a run in the list first (Refresh list shows the recorded runs).")
        return run_id

    def fetch_selected(self) -> None:
        run_id = self._run_to_act_on()
        if run_id:
            self.run_status.setText(f"Fetching run {run_id}…")
            self._workers.append(start_worker(fetch_run, run_id, returned=self._fetched, errored=self._failed))

    def _fetched(self, result) -> None:
        record, report = result
        self.refresh_jobs()
        if report is None:
            self.run_status.setText(f"Run {record.run_id}: {record.status}; results are not all in yet.")
            return
        self.run_status.setText(f"Run {record.run_id}: results fetched.")
        self.show_report(report)

    def cancel_selected(self) -> None:
        run_id = self._run_to_act_on()
        if run_id:
            self._workers.append(start_worker(cancel_hardware_run, run_id, errored=self._failed,
                                              returned=lambda r: (self.refresh_jobs(),
                                                                  self.run_status.setText(f"Run {r.run_id}: {r.status}."))))

    # ---------------------------------------------------------------- results
    def show_report(self, report: dict) -> None:
        """Metrics of both, their difference, agreement, both confusion matrices, per-image <Z> values."""
        from ..hardware.export import report_table

        self.report = report
        sim, hw = report.get("simulated") or {}, report.get("hardware") or {}
        lines = [(f"<b>{report['pack']}</b> on <b>{report['backend']}</b>: {report['n_images']} images, "
                 f"{report['n_jobs']} job(s), agreement {report['agreement']:.3f}")]
        if "macro_f1" in sim:
            lines.append(f"accuracy: simulation {sim['accuracy']:.4f}, backend {hw['accuracy']:.4f} "
                         f"(difference {sim['accuracy'] - hw['accuracy']:+.4f})")
            lines.append(f"macro-F1: simulation {sim['macro_f1']:.4f}, backend {hw['macro_f1']:.4f} "
                         f"(difference {report['macro_f1_drop']:+.4f})")
            labels = report["labels"]
            self.sim_plot.show_matrix("simulation", np.array(sim["confusion_matrix"]), labels, False)
            self.hw_plot.show_matrix(report["backend"], np.array(hw["confusion_matrix"]), labels, False)
        else:
            lines.append("No labels: accuracy and macro-F1 need a labelled folder.")
        self.summary.setText("<br>".join(lines))
        header, rows = report_table(report)
        self.images_table.clear()
        self.images_table.setColumnCount(len(header))
        self.images_table.setHorizontalHeaderLabels(header)
        self.images_table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                self.images_table.setItem(i, j, QTableWidgetItem(f"{v:+.3f}" if isinstance(v, float) else str(v)))
        self.export_csv_button.setEnabled(True)
        self.export_json_button.setEnabled(True)

    def _export(self, kind: str) -> None:
        if self.report is None:
            return
        name = f"hardware_{self.report['pack']}_{self.report['backend']}.{kind}"
        path, _ = QFileDialog.getSaveFileName(self, "Export hardware results", name, f"{kind.upper()} (*.{kind})")
        if path:
            self.export(path, kind)

    def export(self, path: str, kind: str) -> str | None:
        """Write the report as CSV or JSON; the file written, or None after saying why not."""
        from ..core.storage import json_text
        from ..hardware.export import report_csv
        from .export_files import ExportError, export_target, write_files

        what = "The hardware results"
        try:
            target = export_target(path, (f".{kind}",), what)
            text = report_csv(self.report) if kind == "csv" else json_text(self.report)
            write_files({target: text.encode("utf-8")}, what)
        except ExportError as exc:
            self.error.emit(str(exc), "")
            return None
        self.status.emit(f"Saved {target}")
        return target
