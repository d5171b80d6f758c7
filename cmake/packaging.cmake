# Man pages (help2man, from each program's --help), documentation install
# rules, and the Debian package (CPack DEB): `cpack -G DEB` in a build tree
# makes mtwarden_<version>_<arch>.deb. Included last from the top-level
# CMakeLists.txt, once every program target exists.
if(NOT (TARGET mtwarden AND TARGET mtwardenctl AND TARGET mtwarden-worker AND TARGET mtwarden-gate))
  return()
endif()
include(GNUInstallDirs)

# --- Man pages ---------------------------------------------------------------
# Built with the programs (target `man`, part of all), so an install or a
# package always carries pages matching the binaries' --help. FILES and SEE
# ALSO come from cmake/man/mtwarden.h2m.
find_program(MTW_HELP2MAN help2man)
find_program(MTW_GZIP gzip)
if(MTW_HELP2MAN AND MTW_GZIP)
  set(mtw_man_include ${PROJECT_SOURCE_DIR}/cmake/man/mtwarden.h2m)
  set(mtw_man_outputs)
  # mtw_man(TARGET SECTION "NAME line")
  function(mtw_man target section description)
    set(page ${PROJECT_BINARY_DIR}/man/man${section}/${target}.${section})
    # help2man runs `PROGRAM --help`; --version-string spares it a --version
    # the programs do not have. Sanitizer builds: a leak report on exit would
    # only be noise here.
    add_custom_command(OUTPUT ${page}.gz
      COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man/man${section}
      COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0
              ${MTW_HELP2MAN} --no-info --section=${section} --version-string=${PROJECT_VERSION}
              --name=${description} --include=${mtw_man_include} --output=${page}
              $<TARGET_FILE:${target}>
      COMMAND ${MTW_GZIP} -9nf ${page}
      DEPENDS ${target} ${mtw_man_include}
      COMMENT "Generating man page ${target}(${section})"
      VERBATIM)
    set(mtw_man_outputs ${mtw_man_outputs} ${page}.gz PARENT_SCOPE)
    install(FILES ${page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endfunction()
  mtw_man(mtwarden 8 "MTProxy supervisor: one isolated cell per user")
  mtw_man(mtwarden-worker 8 "mtwarden's per-user MTProxy relay")
  mtw_man(mtwarden-gate 8 "mtwarden's connection gate (user identification, masking)")
  mtw_man(mtwarden-webfront 8 "mtwarden's HTTPS front for the WEB proxy type")
  mtw_man(mtwardenctl 1 "manage a running mtwarden through its HTTP API")
  add_custom_target(man ALL DEPENDS ${mtw_man_outputs})
else()
  message(WARNING "help2man or gzip not found: no man pages are built or installed "
                  "(bash scripts/deps.sh installs help2man)")
endif()

# --- Documentation -------------------------------------------------------------
file(GLOB mtw_docs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${mtw_docs} DESTINATION ${CMAKE_INSTALL_DOCDIR})
# The D-Bus interface description, where D-Bus tools look for it.
file(GLOB mtw_dbus_xml CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/org.mtwarden.Manager1.xml)
if(mtw_dbus_xml)
  install(FILES ${mtw_dbus_xml} DESTINATION ${CMAKE_INSTALL_DATADIR}/dbus-1/interfaces)
endif()

# --- Debian package --------------------------------------------------------------
set(MTW_PACKAGE_MAINTAINER "mtwarden maintainers <mtwarden@localhost>" CACHE STRING
    "Maintainer field of the .deb")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mtwarden)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "MTProxy for many users, one isolated cell per user")
# The synopsis is CPACK_PACKAGE_DESCRIPTION_SUMMARY; this is the body.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "mtwarden runs a Telegram MTProto proxy for many users on one host and gives\n"
    "every user a cell of its own: a proxy worker in its own network namespace,\n"
    "under its own uid, behind its own traffic shaper, with quotas, rate limits\n"
    "and connection caps. Managed with mtwardenctl over a local HTTP API or D-Bus.\n"
    "The service is installed but not enabled: review /etc/mtwarden/mtwarden.toml,\n"
    "then run systemctl enable --now mtwarden.")
string(REPLACE ";" "" CPACK_DEBIAN_PACKAGE_DESCRIPTION "${CPACK_DEBIAN_PACKAGE_DESCRIPTION}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${MTW_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # mtwarden_<version>_<arch>.deb
# Library dependencies come from dpkg-shlibdeps (dpkg-dev) on the binaries;
# these are the programs mtwarden needs at run time on top of them: ip and
# nft for an operator inspecting cells, the system bus for the D-Bus API,
# and /bin/kill (procps) for ExecReload.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "iproute2, nftables, dbus, procps")
# Installed under /usr, with the configuration at its absolute /etc path
# (DESTDIR staging keeps both inside the package).
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
configure_file(${PROJECT_SOURCE_DIR}/cmake/deb/postinst.in ${PROJECT_BINARY_DIR}/deb/postinst @ONLY
               FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                                WORLD_READ WORLD_EXECUTE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_BINARY_DIR}/deb/postinst
    ${PROJECT_SOURCE_DIR}/cmake/deb/prerm
    ${PROJECT_SOURCE_DIR}/cmake/deb/postrm
    ${PROJECT_SOURCE_DIR}/cmake/deb/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
