// glue placeholder, replaced below
