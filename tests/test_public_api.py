"""The package's public surface is what __all__ says, and every name in it exists."""

from types import ModuleType

import pytest

import adapter
import adapter.policy
import adapter.sync
from adapter import errors


@pytest.mark.parametrize(
    "package", [adapter, adapter.policy, adapter.sync], ids=lambda p: p.__name__
)
def test_all_names_exist_and_are_sorted(package: ModuleType) -> None:
    assert sorted(package.__all__) == package.__all__
    for name in package.__all__:
        assert hasattr(package, name), name


def test_every_error_is_rooted_in_adapter_error() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, adapter.AdapterError), name


def test_error_names_its_location_and_becomes_an_operation_outcome() -> None:
    exc = errors.MalformedRecordError("POS is not an integer", source="a.vcf", line=12, field="POS")
    assert str(exc) == "a.vcf:12, field POS: POS is not an integer"
    outcome = exc.to_operation_outcome()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "structure"
    assert outcome["issue"][0]["expression"] == ["POS"]
    assert exc.exit_code == 3
    assert exc.http_status == 422
