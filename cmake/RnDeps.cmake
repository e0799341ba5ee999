# Configure-time checks of every build input, each failing with the Debian package to install,
# so a missing one stops `cmake` with a clear message rather than the build half way.

# rn_require_pkg(<VAR> <pkg-config module> <Debian package>)
# pkg_check_modules(<VAR> IMPORTED_TARGET <module>): PkgConfig::<VAR>, or a fatal error
# naming the package.
macro(rn_require_pkg var module debpkg)
  pkg_check_modules(${var} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${var}_FOUND)
    if(DEFINED ENV{PKG_CONFIG_LIBDIR})
      set(_rn_where " (looked in PKG_CONFIG_LIBDIR=$ENV{PKG_CONFIG_LIBDIR})")
    else()
      set(_rn_where "")
    endif()
    message(FATAL_ERROR "pkg-config module '${module}' not found: install the Debian package "
      "${debpkg}${RN_DEB_ARCH_SUFFIX}${_rn_where}")
  endif()
  message(STATUS "${module} ${${var}_VERSION}")
endmacro()

# rn_require_program(<VAR> <program> <Debian package>): the program's path in <VAR>.
function(rn_require_program var prog debpkg)
  find_program(${var} ${prog})
  if(NOT ${var})
    message(FATAL_ERROR "program '${prog}' not found: install the Debian package ${debpkg}")
  endif()
endfunction()

# rn_require_file(<path> <Debian package>)
function(rn_require_file path debpkg)
  if(NOT EXISTS ${path})
    message(FATAL_ERROR "${path} not found: install the Debian package ${debpkg}")
  endif()
endfunction()
