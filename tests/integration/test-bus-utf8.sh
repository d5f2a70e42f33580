#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# No row can fail a whole reply (issue 17 item 2): strings that are not UTF-8 in the store (a
# store edited by hand, a name from an older version) are sent escaped by every property and
# list, so GetManagedObjects, ListCertificates and the properties keep answering everyone.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-orders.sh"

ck_write_config
ck_start_daemon || ck_bail "the daemon does not start"
order=$(ck_request utf8.example.test)
[ "$(ck_wait_order "$order")" = complete ] || ck_bail "the order did not complete"
cert=$(ck_order_cert "$order")
ck_stop_daemon

# Bytes \xff in a certificate's subject, SANs and an order's spool name and error.
sqlite3 "$CK_STATE_DIR/certkeeper.db" \
        "UPDATE certificates SET subject = 'CN=x' || X'FF' || 'y', sans = 'a' || X'FF' || '.example' WHERE id = 1;
         UPDATE orders SET spool_name = 'x' || X'FF' || '.csr', error = 'bad ' || X'FE' WHERE id = 1;" ||
        ck_bail "cannot edit the store"
ck_start_daemon || ck_bail "the daemon does not start again"

ck_check "GetManagedObjects still answers" \
        busctl --system --json=short call org.certkeeper1 /org/certkeeper1 org.freedesktop.DBus.ObjectManager GetManagedObjects
ck_check "the certificate's Subject is sent escaped" \
        sh -c "busctl --system --json=short get-property org.certkeeper1 $cert org.certkeeper1.Certificate Subject | grep -qF 'CN=x\\\\377y'"
ck_check "its SubjectAlternativeNames too" \
        busctl --system get-property org.certkeeper1 "$cert" org.certkeeper1.Certificate SubjectAlternativeNames
ck_check "the order's SpoolName and Error too" \
        sh -c "busctl --system get-property org.certkeeper1 $order org.certkeeper1.Order SpoolName &&
               busctl --system get-property org.certkeeper1 $order org.certkeeper1.Order Error"
ck_check "Describe answers" ck_busctl "$cert" org.certkeeper1.Certificate Describe
ck_check "ListCertificates answers" ck_busctl /org/certkeeper1 org.certkeeper1.Manager ListCertificates 'a{sv}' 0
ck_check "ListOrders answers" ck_busctl /org/certkeeper1 org.certkeeper1.Manager ListOrders 'a{sv}' 0
ck_check "the daemon is still there" ck_name_owned
ck_done
