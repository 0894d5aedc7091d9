import pytest
from torchvision.models import get_weight

from pairzoo import architectures
from pairzoo.architectures import ARCHITECTURES
from pairzoo.errors import PairzooError
from pairzoo.profiles import PROFILES


def test_every_builder_resolves_and_every_torchvision_weight_exists():
    for record in ARCHITECTURES.values():
        assert callable(record.build())
        if record.framework == "pytorch" and record.weights:
            assert get_weight(record.weights).transforms().crop_size == [record.input_size[-1]]


def test_each_role_has_one_default_per_profile():
    roles = {role for record in ARCHITECTURES.values() for role, _ in record.defaults}
    for role in roles:
        assert [architectures.default(role, profile) for profile in PROFILES]


def test_unknown_names_and_roles_are_refused():
    with pytest.raises(PairzooError, match="choose one of cifar-ae"):
        architectures.find("keras-digits-cnn", "pytorch")
    with pytest.raises(PairzooError, match="no single default"):
        architectures.default("no-such-role", "ci")
