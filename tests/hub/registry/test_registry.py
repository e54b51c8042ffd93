"""The registry's rules in memory: bindings over time, one resident per bed, CSV all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hub.config import HubConfigError, load_hub_config
from hub.registry.csv_import import ImportRejected, import_csv
from hub.registry.data import RegistryData, data_from_specs
from hub.registry.index import Registry
from hub.registry.models import (
    Bed,
    Conflict,
    Device,
    NotFound,
    RegistryError,
    Resident,
    Room,
    SiteSpec,
)
from tests.conftest import SMALL_SITE

T0 = 1_800_000_000.0


def small() -> RegistryData:
    return data_from_specs([SiteSpec.model_validate(SMALL_SITE)])


def test_placement_names_whoever_was_in_the_bed_at_that_moment() -> None:
    data = small()
    data.create(Resident(code="E-0003", name="Ann Brown"))
    data.transfer("E-0001", "SR-W-201", T0)  # Mary Jones leaves SR-E-101 for SR-W-201
    data.admit("E-0003", "SR-E-101", T0 + 3600)
    data.discharge("E-0003", T0 + 7200)
    registry = Registry(data)

    def who(device: str, at: float | None = None) -> str | None:
        placement = registry.placement(device, at)
        assert placement is not None
        return placement.resident_name

    assert who("radar-101", T0 - 1) == "Mary Jones"
    assert who("radar-101", T0) is None  # vacant between the transfer and the admission
    assert who("radar-101", T0 + 3600) == "Ann Brown"
    assert who("radar-101", T0 + 7199) == "Ann Brown"
    assert who("radar-101", T0 + 7200) is None
    assert who("radar-101") is None  # now: discharged
    assert who("radar-201", T0 - 1) is None
    assert who("radar-201", T0) == "Mary Jones"
    assert who("radar-201") == "Mary Jones"
    assert registry.placement("no-such-device") is None
    history = [(b.resident, b.start_reason, b.end_reason) for b in data.bed_history["SR-E-101"]]
    assert history == [("E-0001", "config", "transfer"), ("E-0003", "admission", "discharge")]


def test_one_resident_per_bed_and_one_bed_per_resident() -> None:
    data = small()
    data.create(Resident(code="E-0003", name="Ann Brown"))
    with pytest.raises(Conflict, match=r"bed SR-E-101 is occupied by Mary Jones \(E-0001\)"):
        data.admit("E-0003", "SR-E-101", T0)
    with pytest.raises(Conflict, match=r"Li Wei \(E-0002\) is already in bed SR-E-102"):
        data.admit("E-0002", "SR-W-201", T0)
    with pytest.raises(Conflict, match="occupied by Li Wei"):
        data.transfer("E-0001", "SR-E-102", T0)
    with pytest.raises(Conflict, match="not in any bed; admit them first"):
        data.discharge("E-0003", T0)
    with pytest.raises(NotFound, match="no bed with code 'SR-X-999'"):
        data.admit("E-0003", "SR-X-999", T0)
    data.discharge("E-0001", T0)
    data.admit("E-0003", "SR-E-101", T0)  # the discharge freed the bed at that instant


def test_bindings_are_recorded_in_time_order() -> None:
    data = small()
    data.discharge("E-0001", T0)
    with pytest.raises(RegistryError, match="last change of resident E-0001"):
        data.admit("E-0001", "SR-W-201", T0 - 1)
    with pytest.raises(RegistryError, match="last change of bed SR-E-101"):
        data.transfer("E-0002", "SR-E-101", T0 - 1)
    data.admit("E-0001", "SR-W-201", T0)


def test_a_refused_change_changes_nothing() -> None:
    data = small()
    before = data.copy()
    bad = Device(
        id="radar-9", site="sunrise", gateway="gw-east", profile="acme-9000", bed="SR-E-101"
    )
    with pytest.raises(RegistryError, match="unknown device model 'acme-9000'"):
        data.create(bad)
    with pytest.raises(RegistryError, match="site cannot be changed"):
        data.update(Bed, ("SR-E-101",), {"site": "elsewhere"})
    assert data.tables == before.tables


def test_moving_a_device_to_a_room_unbinds_it_from_its_bed() -> None:
    data = small()
    data.update(Device, ("radar-101",), {"room": "r102"})
    moved = data.get(Device, ("radar-101",))
    assert (moved.bed, moved.room) == (None, "r102")
    with pytest.raises(RegistryError, match="bound to both bed 'SR-E-102' and room 'r102'"):
        data.update(Device, ("radar-101",), {"bed": "SR-E-102", "room": "r102"})


BEDS_CSV = """site,zone,zone_name,zone_kind,room,room_name,room_kind,bed,label
sunrise,dementia,Dementia unit,dementia,r301,301,bedroom,SR-D-301,window
sunrise,dementia,,,r302,302,,SR-D-302,
sunrise,dementia,,,r3-bath,Bathroom 3,bathroom,SR-D-399,
"""

RESIDENTS_CSV = "\n".join(
    [
        "code,name,care_level,flags,bed,contact1_name,contact1_relation,contact1_phone,"
        "contact2_name,contact2_relation,contact2_email",
        "E-0101,Rose Park,fully_dependent,dementia;wander_risk,SR-D-301,"
        "Tom Park,family,+44 7700 900123,Dr Lee,family_doctor,lee@example.org",
        "E-0102,Sam Okoro,self_care,,SR-D-302,,,,,,",
        "E-0103,Ida Bell,,living_alone,,,,,,,",
        "",
    ]
)


def test_a_good_csv_imports_every_row() -> None:
    data = small()
    changes = import_csv(data, "beds", BEDS_CSV, T0)
    assert {c.record.KIND for c in changes} == {"zone", "room", "bed"}
    assert data.get(Room, ("sunrise", "r3-bath")).kind == "bathroom"
    import_csv(data, "residents", RESIDENTS_CSV, T0)
    rose = data.get(Resident, ("E-0101",))
    assert rose.flags == ["dementia", "wander_risk"]
    assert [(c.name, c.relation) for c in rose.contacts] == [
        ("Tom Park", "family"),
        ("Dr Lee", "family_doctor"),
    ]
    occupant = data.occupant("SR-D-302")
    assert occupant is not None and occupant.resident == "E-0102"
    assert data.current_binding("E-0103") is None


def test_a_csv_with_bad_rows_reports_each_and_imports_nothing() -> None:
    data = small()
    before = data.copy()
    text = (
        "code,name,care_level,bed\n"
        "E-0201,Good Row,self_care,SR-W-201\n"
        "E-0202,Bad Level,sometimes,\n"
        "E-0001,Duplicate Code,,\n"
        "E-0203,Occupied Bed,,SR-E-101\n"
        "E-0204,Unknown Bed,,SR-Z-000\n"
    )
    with pytest.raises(ImportRejected) as caught:
        import_csv(data.copy(), "residents", text, T0)
    problems = {p.line: p.problem for p in caught.value.problems}
    assert sorted(problems) == [3, 4, 5, 6]
    assert "care_level" in problems[3]
    assert "elder code 'E-0001' is already used by Mary Jones" in problems[4]
    assert "bed SR-E-101 is occupied by Mary Jones" in problems[5]
    assert "no bed with code 'SR-Z-000'" in problems[6]
    assert data.tables == before.tables


def test_a_csv_with_a_wrong_header_is_refused_on_line_1() -> None:
    with pytest.raises(ImportRejected) as caught:
        import_csv(small(), "devices", "id,site,gateway,profil\nx,sunrise,gw-east,y\n", T0)
    (problem,) = caught.value.problems
    assert problem.line == 1
    assert "missing column(s) profile" in problem.problem


def test_the_config_file_may_leave_sites_out_once_the_database_holds_the_registry(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump({"web": {"secret_key": "s" * 40}, "organisation": "Acme Care"}))
    config = load_hub_config(path)
    assert (config.sites, config.organisation) == (None, "Acme Care")
    path.write_text(yaml.safe_dump({"web": {"secret_key": "s" * 40}, "sites": []}))
    with pytest.raises(HubConfigError, match="sites"):
        load_hub_config(path)
