from kai_shell._entry import kai

kai()
