"""The console page, as the proxy serves it and talks to it.

static_files answers its files to plain GETs, assets says where its npm
scripts are, csp and frame_ancestors say which dashboards may frame it,
and commands is what the page may ask besides console bytes (SysRq, NMI).
"""
