#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Extract the org.certkeeper1.* interfaces that a running certkeeperd serves,
as one canonical XML document. Used by tools/update-introspection to write
dbus/org.certkeeper1.xml and by test-introspection.sh to compare against it.

usage: introspect.py OBJECT_PATH...   (prints the document)
       introspect.py --canonical FILE  (prints FILE canonicalised)
"""
import sys
import xml.etree.ElementTree as ET

import dbus

HEADER = ('<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"\n'
          ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">\n')


def canonical(ifaces):
    """Sorted interfaces; members keep the order the daemon declares them in."""
    root = ET.Element('node')
    for name in sorted(ifaces):
        src = ifaces[name]
        iface = ET.SubElement(root, 'interface', name=name)
        for member in src:
            el = ET.SubElement(iface, member.tag, dict(sorted(member.attrib.items())))
            for sub in member:
                ET.SubElement(el, sub.tag, dict(sorted(sub.attrib.items())))
    ET.indent(root, space='  ')
    return HEADER + ET.tostring(root, encoding='unicode') + '\n'


def from_bus(paths):
    bus = dbus.SystemBus()
    ifaces = {}
    for path in paths:
        obj = bus.get_object('org.certkeeper1', path)
        xml = obj.Introspect(dbus_interface='org.freedesktop.DBus.Introspectable')
        for iface in ET.fromstring(xml).findall('interface'):
            if iface.get('name').startswith('org.certkeeper1.'):
                ifaces[iface.get('name')] = iface
    return ifaces


def from_file(path):
    return {i.get('name'): i for i in ET.parse(path).getroot().findall('interface')}


if __name__ == '__main__':
    if sys.argv[1] == '--canonical':
        sys.stdout.write(canonical(from_file(sys.argv[2])))
    else:
        sys.stdout.write(canonical(from_bus(sys.argv[1:])))
