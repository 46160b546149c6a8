import warnings

# oslo.messaging imports oslo.service, whose eventlet backend warns on
# import; serialproxy never uses eventlet.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
