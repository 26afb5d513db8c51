"""``azureml.pipeline.core.schedule``: run a published pipeline on a recurrence, or when data
lands on a datastore.

A ``Schedule`` lives in the API; the schedule firer service fires it (once per due time,
however many firers run; a missed due time fires once after downtime). The v1 arguments
``wait_for_provisioning`` and ``wait_timeout`` are accepted: a headrace schedule is in force
as soon as the API answers, so there is nothing to wait for.
"""

from __future__ import annotations

import builtins
import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import ValidationError

from contracts.schedule import Recurrence
from headrace.client import parameter_assignments
from headrace.published import ActiveOrDisabled

if TYPE_CHECKING:
    from headrace.experiment import PipelineRun
    from headrace.workspace import Workspace

__all__ = ["Schedule", "ScheduleRecurrence", "TimeZone"]


class TimeZone(enum.Enum):
    """Time zones by their Windows names, as v1's enum has them (IANA names work too)."""

    AUSCentralStandardTime = "AUS Central Standard Time"
    AUSEasternStandardTime = "AUS Eastern Standard Time"
    AfghanistanStandardTime = "Afghanistan Standard Time"
    AlaskanStandardTime = "Alaskan Standard Time"
    AlbertaStandardTime = "Alberta Standard Time"
    AleutianStandardTime = "Aleutian Standard Time"
    AltaiStandardTime = "Altai Standard Time"
    ArabStandardTime = "Arab Standard Time"
    ArabianStandardTime = "Arabian Standard Time"
    ArabicStandardTime = "Arabic Standard Time"
    ArgentinaStandardTime = "Argentina Standard Time"
    AstrakhanStandardTime = "Astrakhan Standard Time"
    AtlanticStandardTime = "Atlantic Standard Time"
    AusCentralWStandardTime = "Aus Central W. Standard Time"
    AzerbaijanStandardTime = "Azerbaijan Standard Time"
    AzoresStandardTime = "Azores Standard Time"
    BahiaStandardTime = "Bahia Standard Time"
    BangladeshStandardTime = "Bangladesh Standard Time"
    BelarusStandardTime = "Belarus Standard Time"
    BougainvilleStandardTime = "Bougainville Standard Time"
    BritishColumbiaStandardTime = "British Columbia Standard Time"
    CanadaCentralStandardTime = "Canada Central Standard Time"
    CapeVerdeStandardTime = "Cape Verde Standard Time"
    CaucasusStandardTime = "Caucasus Standard Time"
    CenAustraliaStandardTime = "Cen. Australia Standard Time"
    CentralAmericaStandardTime = "Central America Standard Time"
    CentralAsiaStandardTime = "Central Asia Standard Time"
    CentralBrazilianStandardTime = "Central Brazilian Standard Time"
    CentralEuropeStandardTime = "Central Europe Standard Time"
    CentralEuropeanStandardTime = "Central European Standard Time"
    CentralPacificStandardTime = "Central Pacific Standard Time"
    CentralStandardTime = "Central Standard Time"
    CentralStandardTimeMexico = "Central Standard Time (Mexico)"
    ChathamIslandsStandardTime = "Chatham Islands Standard Time"
    ChinaStandardTime = "China Standard Time"
    CubaStandardTime = "Cuba Standard Time"
    DatelineStandardTime = "Dateline Standard Time"
    EAfricaStandardTime = "E. Africa Standard Time"
    EAustraliaStandardTime = "E. Australia Standard Time"
    EEuropeStandardTime = "E. Europe Standard Time"
    ESouthAmericaStandardTime = "E. South America Standard Time"
    EasterIslandStandardTime = "Easter Island Standard Time"
    EasternStandardTime = "Eastern Standard Time"
    EasternStandardTimeMexico = "Eastern Standard Time (Mexico)"
    EgyptStandardTime = "Egypt Standard Time"
    EkaterinburgStandardTime = "Ekaterinburg Standard Time"
    FLEStandardTime = "FLE Standard Time"
    FijiStandardTime = "Fiji Standard Time"
    GMTStandardTime = "GMT Standard Time"
    GTBStandardTime = "GTB Standard Time"
    GeorgianStandardTime = "Georgian Standard Time"
    GreenlandStandardTime = "Greenland Standard Time"
    GreenwichStandardTime = "Greenwich Standard Time"
    HaitiStandardTime = "Haiti Standard Time"
    HawaiianStandardTime = "Hawaiian Standard Time"
    IndiaStandardTime = "India Standard Time"
    IranStandardTime = "Iran Standard Time"
    IsraelStandardTime = "Israel Standard Time"
    JordanStandardTime = "Jordan Standard Time"
    KaliningradStandardTime = "Kaliningrad Standard Time"
    KamchatkaStandardTime = "Kamchatka Standard Time"
    KoreaStandardTime = "Korea Standard Time"
    LibyaStandardTime = "Libya Standard Time"
    LineIslandsStandardTime = "Line Islands Standard Time"
    LordHoweStandardTime = "Lord Howe Standard Time"
    MagadanStandardTime = "Magadan Standard Time"
    MagallanesStandardTime = "Magallanes Standard Time"
    ManitobaStandardTime = "Manitoba Standard Time"
    MarquesasStandardTime = "Marquesas Standard Time"
    MauritiusStandardTime = "Mauritius Standard Time"
    MidAtlanticStandardTime = "Mid-Atlantic Standard Time"
    MiddleEastStandardTime = "Middle East Standard Time"
    MontevideoStandardTime = "Montevideo Standard Time"
    MoroccoStandardTime = "Morocco Standard Time"
    MountainStandardTime = "Mountain Standard Time"
    MountainStandardTimeMexico = "Mountain Standard Time (Mexico)"
    MyanmarStandardTime = "Myanmar Standard Time"
    NCentralAsiaStandardTime = "N. Central Asia Standard Time"
    NamibiaStandardTime = "Namibia Standard Time"
    NepalStandardTime = "Nepal Standard Time"
    NewZealandStandardTime = "New Zealand Standard Time"
    NewfoundlandStandardTime = "Newfoundland Standard Time"
    NorfolkStandardTime = "Norfolk Standard Time"
    NorthAsiaEastStandardTime = "North Asia East Standard Time"
    NorthAsiaStandardTime = "North Asia Standard Time"
    NorthKoreaStandardTime = "North Korea Standard Time"
    OmskStandardTime = "Omsk Standard Time"
    PacificSAStandardTime = "Pacific SA Standard Time"
    PacificStandardTime = "Pacific Standard Time"
    PacificStandardTimeMexico = "Pacific Standard Time (Mexico)"
    PakistanStandardTime = "Pakistan Standard Time"
    ParaguayStandardTime = "Paraguay Standard Time"
    QyzylordaStandardTime = "Qyzylorda Standard Time"
    RomanceStandardTime = "Romance Standard Time"
    RussiaTimeZone10 = "Russia Time Zone 10"
    RussiaTimeZone11 = "Russia Time Zone 11"
    RussiaTimeZone3 = "Russia Time Zone 3"
    RussianStandardTime = "Russian Standard Time"
    SAEasternStandardTime = "SA Eastern Standard Time"
    SAPacificStandardTime = "SA Pacific Standard Time"
    SAWesternStandardTime = "SA Western Standard Time"
    SEAsiaStandardTime = "SE Asia Standard Time"
    SaintPierreStandardTime = "Saint Pierre Standard Time"
    SakhalinStandardTime = "Sakhalin Standard Time"
    SamoaStandardTime = "Samoa Standard Time"
    SaoTomeStandardTime = "Sao Tome Standard Time"
    SaratovStandardTime = "Saratov Standard Time"
    SingaporeStandardTime = "Singapore Standard Time"
    SouthAfricaStandardTime = "South Africa Standard Time"
    SouthSudanStandardTime = "South Sudan Standard Time"
    SriLankaStandardTime = "Sri Lanka Standard Time"
    SudanStandardTime = "Sudan Standard Time"
    SyriaStandardTime = "Syria Standard Time"
    TaipeiStandardTime = "Taipei Standard Time"
    TasmaniaStandardTime = "Tasmania Standard Time"
    TocantinsStandardTime = "Tocantins Standard Time"
    TokyoStandardTime = "Tokyo Standard Time"
    TomskStandardTime = "Tomsk Standard Time"
    TongaStandardTime = "Tonga Standard Time"
    TransbaikalStandardTime = "Transbaikal Standard Time"
    TurkeyStandardTime = "Turkey Standard Time"
    TurksAndCaicosStandardTime = "Turks And Caicos Standard Time"
    USEasternStandardTime = "US Eastern Standard Time"
    USMountainStandardTime = "US Mountain Standard Time"
    UTC = "UTC"
    UTC02 = "UTC-02"
    UTC08 = "UTC-08"
    UTC09 = "UTC-09"
    UTC11 = "UTC-11"
    UTC12 = "UTC+12"
    UTC13 = "UTC+13"
    UlaanbaatarStandardTime = "Ulaanbaatar Standard Time"
    VenezuelaStandardTime = "Venezuela Standard Time"
    VladivostokStandardTime = "Vladivostok Standard Time"
    VolgogradStandardTime = "Volgograd Standard Time"
    WAustraliaStandardTime = "W. Australia Standard Time"
    WCentralAfricaStandardTime = "W. Central Africa Standard Time"
    WEuropeStandardTime = "W. Europe Standard Time"
    WMongoliaStandardTime = "W. Mongolia Standard Time"
    WestAsiaStandardTime = "West Asia Standard Time"
    WestBankStandardTime = "West Bank Standard Time"
    WestPacificStandardTime = "West Pacific Standard Time"
    YakutskStandardTime = "Yakutsk Standard Time"
    YukonStandardTime = "Yukon Standard Time"


class ScheduleRecurrence:
    """How often a schedule fires: every ``interval`` ``frequency`` ("Minute", "Hour", "Day",
    "Week", "Month"), from ``start_time``, at ``hours``/``minutes`` or ``time_of_day`` on
    ``week_days``, in ``time_zone`` (a ``TimeZone`` member or an IANA name; UTC if None)."""

    def __init__(
        self,
        frequency: str,
        interval: int,
        start_time: datetime | str | None = None,
        time_zone: TimeZone | str | None = None,
        hours: builtins.list[int] | None = None,
        minutes: builtins.list[int] | None = None,
        week_days: builtins.list[str] | None = None,
        time_of_day: str | None = None,
    ) -> None:
        self.frequency = frequency
        self.interval = interval
        self.start_time = start_time
        self.time_zone = time_zone
        self.hours = hours
        self.minutes = minutes
        self.week_days = week_days
        self.time_of_day = time_of_day
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` saying what is wrong with the recurrence."""
        self._model()

    def _model(self) -> Recurrence:
        zone = self.time_zone.value if isinstance(self.time_zone, enum.Enum) else self.time_zone
        try:
            return Recurrence(
                frequency=self.frequency,
                interval=self.interval,
                start_time=self.start_time,
                time_zone=zone,
                hours=self.hours,
                minutes=self.minutes,
                week_days=self.week_days,
                time_of_day=self.time_of_day,
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'recurrence'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ValueError(f"invalid ScheduleRecurrence: {problems}") from None

    @classmethod
    def _from_json(cls, doc: dict[str, Any]) -> ScheduleRecurrence:
        return cls(**{k: v for k, v in doc.items() if v is not None})

    def __repr__(self) -> str:
        return f"ScheduleRecurrence({self._model().describe()})"


class Schedule(ActiveOrDisabled):
    """A schedule as the API last described it (``get`` and every change return fresh views).

    Time-based (``recurrence``) or datastore-triggered (``datastore``): the latter lists
    ``path_on_datastore`` every ``polling_interval`` minutes and starts a run when objects
    were added or their content changed; with ``data_path_parameter_name`` it starts one run
    per changed object, passing the object's path in that (string) pipeline parameter.
    """

    # -- properties (v1's; id, name, description and status from ActiveOrDisabled) --------

    @property
    def pipeline_id(self) -> str | None:
        return self._info["pipeline_id"]  # type: ignore[no-any-return]

    @property
    def pipeline_endpoint_id(self) -> str | None:
        return self._info["pipeline_endpoint_id"]  # type: ignore[no-any-return]

    @property
    def recurrence(self) -> ScheduleRecurrence | None:
        doc = self._info["recurrence"]
        return ScheduleRecurrence._from_json(doc) if doc is not None else None

    @property
    def datastore_name(self) -> str | None:
        return self._info["datastore_name"]  # type: ignore[no-any-return]

    @property
    def polling_interval(self) -> int | None:
        return self._info["polling_interval"]  # type: ignore[no-any-return]

    @property
    def data_path_parameter_name(self) -> str | None:
        return self._info["data_path_parameter_name"]  # type: ignore[no-any-return]

    @property
    def path_on_datastore(self) -> str | None:
        return self._info["path_on_datastore"]  # type: ignore[no-any-return]

    @property
    def continue_on_step_failure(self) -> bool | None:
        return self._info["continue_on_step_failure"]  # type: ignore[no-any-return]

    @property
    def next_due(self) -> str | None:
        """When the firer acts on it next (ISO 8601, UTC); headrace's addition."""
        return self._info["next_due"]  # type: ignore[no-any-return]

    # -- creating ------------------------------------------------------------------------

    @staticmethod
    def create(
        workspace: Workspace,
        name: str,
        pipeline_id: str,
        experiment_name: str,
        recurrence: ScheduleRecurrence | None = None,
        description: str | None = None,
        pipeline_parameters: dict[str, Any] | None = None,
        wait_for_provisioning: bool = False,
        wait_timeout: int = 3600,
        datastore: Any = None,
        polling_interval: int = 5,
        data_path_parameter_name: str | None = None,
        continue_on_step_failure: bool | None = None,
        path_on_datastore: str | None = None,
    ) -> Schedule:
        """A schedule for the published pipeline ``pipeline_id``: give ``recurrence`` or
        ``datastore`` (a ``Datastore`` or its name)."""
        return Schedule._create(workspace, {"pipeline_id": pipeline_id}, **_args(locals()))

    @staticmethod
    def create_for_pipeline_endpoint(
        workspace: Workspace,
        name: str,
        pipeline_endpoint_id: str,
        experiment_name: str,
        recurrence: ScheduleRecurrence | None = None,
        description: str | None = None,
        pipeline_parameters: dict[str, Any] | None = None,
        wait_for_provisioning: bool = False,
        wait_timeout: int = 3600,
        datastore: Any = None,
        polling_interval: int = 5,
        data_path_parameter_name: str | None = None,
        continue_on_step_failure: bool | None = None,
        path_on_datastore: str | None = None,
    ) -> Schedule:
        """A schedule for the endpoint's default version at each firing."""
        return Schedule._create(
            workspace, {"pipeline_endpoint_id": pipeline_endpoint_id}, **_args(locals())
        )

    @staticmethod
    def _create(workspace: Workspace, target: dict[str, str], **given: Any) -> Schedule:
        body = {**target, **_trigger_body(given), "name": given["name"]}
        body["experiment_name"] = given["experiment_name"]
        if given["datastore"] is None:
            body.pop("polling_interval", None)
        return Schedule(workspace, workspace.client.post("/schedules", body))

    # -- finding -------------------------------------------------------------------------

    @staticmethod
    def get(workspace: Workspace, id: str) -> Schedule:
        return Schedule(workspace, workspace.client.get(f"/schedules/{quote(id)}"))

    @staticmethod
    def list(
        workspace: Workspace,
        active_only: bool = True,
        pipeline_id: str | None = None,
        pipeline_endpoint_id: str | None = None,
    ) -> builtins.list[Schedule]:
        found = workspace.client.get(
            "/schedules",
            active_only=str(active_only).lower(),
            pipeline_id=pipeline_id,
            pipeline_endpoint_id=pipeline_endpoint_id,
        )
        return [Schedule(workspace, s) for s in found]

    get_all = list

    @staticmethod
    def get_schedules_for_pipeline_id(
        workspace: Workspace, pipeline_id: str
    ) -> builtins.list[Schedule]:
        """Every schedule of the published pipeline, disabled ones included (as in v1)."""
        return Schedule.list(workspace, active_only=False, pipeline_id=pipeline_id)

    @staticmethod
    def get_schedules_for_pipeline_endpoint_id(
        workspace: Workspace, pipeline_endpoint_id: str
    ) -> builtins.list[Schedule]:
        return Schedule.list(
            workspace, active_only=False, pipeline_endpoint_id=pipeline_endpoint_id
        )

    @staticmethod
    def load_yaml(workspace: Workspace, filename: str) -> Schedule:
        from headrace.errors import NotSupportedError

        raise NotSupportedError(
            "Schedule.load_yaml (schedules defined in a YAML file)",
            "create the schedule in code with Schedule.create(...) and a ScheduleRecurrence",
        )

    # -- changing ------------------------------------------------------------------------

    def enable(self, wait_for_provisioning: bool = False, wait_timeout: int = 3600) -> None:
        """Fire again from the next due time (what came due while disabled does not fire)."""
        self._info = self.workspace.client.post(f"/schedules/{quote(self.id)}/enable", {})

    def disable(self, wait_for_provisioning: bool = False, wait_timeout: int = 3600) -> None:
        self._info = self.workspace.client.post(f"/schedules/{quote(self.id)}/disable", {})

    def update(
        self,
        name: str | None = None,
        description: str | None = None,
        recurrence: ScheduleRecurrence | None = None,
        pipeline_parameters: dict[str, Any] | None = None,
        status: str | None = None,
        wait_for_provisioning: bool = False,
        wait_timeout: int = 3600,
        datastore: Any = None,
        polling_interval: int | None = None,
        data_path_parameter_name: str | None = None,
        continue_on_step_failure: bool | None = None,
        path_on_datastore: str | None = None,
    ) -> None:
        """Change what is given (None leaves a field as it is)."""
        body = _trigger_body(_args(locals()))
        if name is not None:
            body["name"] = name
        if status is not None:
            body["status"] = status
        body = {k: v for k, v in body.items() if v is not None}
        self._info = self.workspace.client.patch(f"/schedules/{quote(self.id)}", body)

    # -- its runs ------------------------------------------------------------------------

    def _runs(self) -> builtins.list[PipelineRun]:
        from headrace.experiment import Experiment, PipelineRun

        firings = self.workspace.client.get(f"/schedules/{quote(self.id)}/firings")
        experiment = Experiment(self.workspace, str(self._info["experiment_name"]))
        return [PipelineRun(experiment, f["run_id"]) for f in firings if f["run_id"]]

    def get_pipeline_runs(self) -> builtins.list[PipelineRun]:
        """The runs the schedule started, newest first."""
        return self._runs()

    def get_last_pipeline_run(self) -> PipelineRun | None:
        """The run it started last, or None if it has not fired yet."""
        runs = self._runs()
        return runs[0] if runs else None

    def __repr__(self) -> str:
        recurrence = self.recurrence
        what = (
            recurrence._model().describe()
            if recurrence is not None
            else f"on changes under {self.datastore_name}/{self.path_on_datastore or ''}"
        )
        return f"Schedule(name={self.name!r}, id={self.id!r}, status={self.status!r}, {what})"


def _args(values: dict[str, Any]) -> dict[str, Any]:
    """A method's arguments without ``workspace``/``self`` and the waiting knobs."""
    skip = {
        "workspace",
        "self",
        "wait_for_provisioning",
        "wait_timeout",
        "pipeline_id",
        "pipeline_endpoint_id",
    }
    return {k: v for k, v in values.items() if k not in skip}


def _trigger_body(given: dict[str, Any]) -> dict[str, Any]:
    """The trigger fields of a create or update request."""
    recurrence = given.get("recurrence")
    store = given.get("datastore")
    if store is not None and not isinstance(store, str):
        store = store.name
    params = given.get("pipeline_parameters")
    return {
        "description": given.get("description"),
        "recurrence": recurrence._model().model_dump(mode="json") if recurrence else None,
        "pipeline_parameters": parameter_assignments(params) if params is not None else None,
        "continue_on_step_failure": given.get("continue_on_step_failure"),
        "datastore": store,
        "polling_interval": given.get("polling_interval"),
        "path_on_datastore": given.get("path_on_datastore"),
        "data_path_parameter_name": given.get("data_path_parameter_name"),
    }
