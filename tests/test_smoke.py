import shelfwise


def test_package_imports() -> None:
    assert shelfwise.__doc__ == "ShelfWise."
