"""Procedural target rigs for the retargeting tests (built from the SMPL template skeleton, z-up)."""

from __future__ import annotations

import math

import numpy as np

from remomask_addon.core import coords, smpl_rig

L_ARM = (16, 18, 20, 22)
R_ARM = (17, 19, 21, 23)
L_LEG = (1, 4, 7, 10)
R_LEG = (2, 5, 8, 11)
TOE = np.array([0.0, -0.09, 0.0])
UP = np.array([0.0, 0.0, 0.18])


def _rot_y(deg):
    a = math.radians(deg)
    return np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])


def target_joints(leg_scale=1.0, arm_scale=1.0, arm_down_deg=0.0):
    """SMPL template joints in z-up with scaled legs/arms, arms rotated down (A-pose), feet on z=0."""
    J = coords.points_to_zup(smpl_rig.TEMPLATE_REST_JOINTS)
    for chain in (L_LEG, R_LEG):
        new = [J[chain[0]]]
        for a, b in zip(chain[:-1], chain[1:]):
            new.append(new[-1] + leg_scale * (J[b] - J[a]))
        for c, p in zip(chain, new):
            J[c] = p
    for chain, sign in ((L_ARM, 1.0), (R_ARM, -1.0)):
        R = _rot_y(sign * arm_down_deg)
        new = [J[chain[0]]]
        for a, b in zip(chain[:-1], chain[1:]):
            new.append(new[-1] + arm_scale * (R @ (J[b] - J[a])))
        for c, p in zip(chain, new):
            J[c] = p
    low = min(J[7, 2], J[8, 2], J[10, 2], J[11, 2])
    J[:, 2] -= low
    return J


def build_armature(bpy, name, bones, *, rotation_mode="QUATERNION", location=(0.0, 0.0, 0.0)):
    """bones: list of (name, head, tail, parent_name|None, roll_radians)."""
    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    obj.location = location
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    eb = {}
    for bname, head, tail, parent, roll in bones:
        e = data.edit_bones.new(bname)
        e.head = tuple(float(x) for x in head)
        e.tail = tuple(float(x) for x in tail)
        e.roll = roll
        eb[bname] = e
    for bname, _h, _t, parent, _r in bones:
        if parent and parent in eb:
            eb[bname].parent = eb[parent]
    bpy.ops.object.mode_set(mode="OBJECT")
    for pb in obj.pose.bones:
        pb.rotation_mode = rotation_mode
    return obj


def mixamo_bones(J, skip=()):
    r90 = math.pi / 2
    b = [("mixamorig:Hips", J[0], J[3], None, 0.0),
         ("mixamorig:Spine", J[3], J[6], "mixamorig:Hips", 0.0),
         ("mixamorig:Spine1", J[6], J[9], "mixamorig:Spine", 0.0),
         ("mixamorig:Spine2", J[9], J[12], "mixamorig:Spine1", 0.0),
         ("mixamorig:Neck", J[12], J[15], "mixamorig:Spine2", 0.0),
         ("mixamorig:Head", J[15], J[15] + UP, "mixamorig:Neck", 0.0),
         ("mixamorig:HeadTop_End", J[15] + UP, J[15] + 1.3 * UP, "mixamorig:Head", 0.0)]
    for S, s, arm, leg, col in (("Left", 1, L_ARM, L_LEG, 13), ("Right", -1, R_ARM, R_LEG, 14)):
        p = f"mixamorig:{S}"
        b += [(p + "Shoulder", J[col], J[arm[0]], "mixamorig:Spine2", 0.0),
              (p + "Arm", J[arm[0]], J[arm[1]], p + "Shoulder", r90),
              (p + "ForeArm", J[arm[1]], J[arm[2]], p + "Arm", r90),
              (p + "Hand", J[arm[2]], J[arm[3]], p + "ForeArm", r90),
              (p + "HandIndex1", J[arm[3]], J[arm[3]] + (J[arm[3]] - J[arm[2]]) * 0.5, p + "Hand", 0.0),
              (p + "UpLeg", J[leg[0]], J[leg[1]], "mixamorig:Hips", 0.0),
              (p + "Leg", J[leg[1]], J[leg[2]], p + "UpLeg", 0.0),
              (p + "Foot", J[leg[2]], J[leg[3]], p + "Leg", 0.0),
              (p + "ToeBase", J[leg[3]], J[leg[3]] + TOE, p + "Foot", 0.0),
              (p + "Toe_End", J[leg[3]] + TOE, J[leg[3]] + 1.5 * TOE, p + "ToeBase", 0.0)]
    return [x for x in b if x[0] not in skip]


def rigify_bones(J):
    mid = lambda a, b: 0.5 * (a + b)  # noqa: E731
    nm = mid(J[12], J[15])
    b = [("DEF-spine", J[0], J[3], None, 0.0),
         ("DEF-spine.001", J[3], J[6], "DEF-spine", 0.0),
         ("DEF-spine.002", J[6], J[9], "DEF-spine.001", 0.0),
         ("DEF-spine.003", J[9], J[12], "DEF-spine.002", 0.0),
         ("DEF-spine.004", J[12], nm, "DEF-spine.003", 0.0),
         ("DEF-spine.005", nm, J[15], "DEF-spine.004", 0.0),
         ("DEF-spine.006", J[15], J[15] + UP, "DEF-spine.005", 0.0),
         ("MCH-spine_helper", J[0], J[0] + UP, "DEF-spine", 0.0)]
    for S, arm, leg, col in (("L", L_ARM, L_LEG, 13), ("R", R_ARM, R_LEG, 14)):
        ua, fa, th, sh = mid(J[arm[0]], J[arm[1]]), mid(J[arm[1]], J[arm[2]]), \
            mid(J[leg[0]], J[leg[1]]), mid(J[leg[1]], J[leg[2]])
        roll = -math.pi / 2 if S == "L" else math.pi / 2
        b += [(f"DEF-pelvis.{S}", J[0], J[leg[0]] + np.array([0, 0, 0.1]), "DEF-spine", 0.0),
              (f"DEF-shoulder.{S}", J[col], J[arm[0]], "DEF-spine.003", 0.3),
              (f"DEF-upper_arm.{S}", J[arm[0]], ua, f"DEF-shoulder.{S}", roll),
              (f"DEF-upper_arm.{S}.001", ua, J[arm[1]], f"DEF-upper_arm.{S}", roll),
              (f"DEF-forearm.{S}", J[arm[1]], fa, f"DEF-upper_arm.{S}.001", roll),
              (f"DEF-forearm.{S}.001", fa, J[arm[2]], f"DEF-forearm.{S}", roll),
              (f"DEF-hand.{S}", J[arm[2]], J[arm[3]], f"DEF-forearm.{S}.001", roll),
              (f"ORG-upper_arm.{S}", J[arm[0]], J[arm[1]], "DEF-spine.003", 0.0),
              (f"upper_arm_fk.{S}", J[arm[0]], J[arm[1]], "DEF-spine.003", 0.0),
              (f"DEF-thigh.{S}", J[leg[0]], th, "DEF-spine", 0.0),
              (f"DEF-thigh.{S}.001", th, J[leg[1]], f"DEF-thigh.{S}", 0.0),
              (f"DEF-shin.{S}", J[leg[1]], sh, f"DEF-thigh.{S}.001", 0.0),
              (f"DEF-shin.{S}.001", sh, J[leg[2]], f"DEF-shin.{S}", 0.0),
              (f"DEF-foot.{S}", J[leg[2]], J[leg[3]], f"DEF-shin.{S}.001", 0.0),
              (f"DEF-toe.{S}", J[leg[3]], J[leg[3]] + TOE, f"DEF-foot.{S}", 0.0)]
    return b
