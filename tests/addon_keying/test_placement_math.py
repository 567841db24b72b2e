"""Where a new take goes, the bpy-free maths (``core/placement.py``): beside the boxes in its way, never inside
one, and not pushed away by a floor under it."""

import numpy as np

from remomask_addon.core import placement

TAKE = ((-0.4, -3.2, 0.0), (0.5, 0.3, 1.9))     # a walk along -Y, as measured from its bones
CUBE = ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))     # Blender's default cube at the origin


def _apart(a, b, gap):
    a, b = placement.as_box(a), placement.as_box(b)
    return a[0, 0] >= b[1, 0] + gap - 1e-9 or b[0, 0] >= a[1, 0] + gap - 1e-9


def test_nothing_in_the_way_stays_put():
    assert placement.beside_offset(TAKE, []) == 0.0
    far = ((5.0, 5.0, 0.0), (6.0, 6.0, 2.0))
    assert placement.beside_offset(TAKE, [far]) == 0.0


def test_the_default_cube_pushes_the_take_beside_it():
    dx = placement.beside_offset(TAKE, [CUBE], gap=0.5)
    assert np.isclose(dx, 1.0 + 0.5 + 0.4)
    assert _apart(np.asarray(TAKE) + [dx, 0, 0], CUBE, 0.5)


def test_each_take_goes_beside_the_previous_ones():
    boxes = [CUBE]
    xs = []
    for _ in range(3):
        dx = placement.beside_offset(TAKE, boxes)
        placed = np.asarray(TAKE) + [dx, 0, 0]
        assert all(_apart(placed, b, placement.GAP) for b in boxes)
        boxes.append(placed)
        xs.append(dx)
    assert xs == sorted(xs) and len(set(xs)) == 3


def test_a_gap_between_boxes_is_used_when_the_take_fits():
    left = ((-5.0, -1.0, 0.0), (1.0, 1.0, 2.0))
    right = ((4.0, -1.0, 0.0), (9.0, 1.0, 2.0))       # 3 m free between them: the take (0.9 m + gaps) fits
    dx = placement.beside_offset(TAKE, [right, left])
    assert np.isclose(dx, 1.0 + placement.GAP + 0.4)


def test_a_floor_or_something_above_is_no_obstacle():
    floor = ((-50.0, -50.0, -0.05), (50.0, 50.0, 0.0))
    lamp = ((-1.0, -1.0, 2.5), (1.0, 1.0, 3.0))
    rug = ((-2.0, -2.0, 0.0), (2.0, 2.0, 0.05))
    assert placement.beside_offset(TAKE, [floor, lamp, rug]) == 0.0


def test_footprint_pads_the_body_but_keeps_the_feet_on_the_floor():
    pts = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 1.7]])
    box = placement.footprint(pts, pad=0.2)
    np.testing.assert_allclose(box, [[-0.2, -2.2, 0.0], [1.2, 0.2, 1.9]])
    np.testing.assert_allclose(placement.footprint(np.zeros((0, 3))), placement.DEFAULT_FOOTPRINT)
    np.testing.assert_allclose(placement.box_of_corners([[1, 2, 3], [-1, 5, 0]]), [[-1, 2, 0], [1, 5, 3]])
